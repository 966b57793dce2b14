// Which state directory a command reads (daemon logs, the event journal,
// crash reports): --state-dir, else the one the running broker reports in
// STATUS, else the default — so `logs`, `events` and `doctor` read where
// the broker actually writes, whatever it was started with.
import type { ParsedArgs } from '@handoff/backend-sdk/cli';
import { AdminVerb } from '@handoff/protocol';
import { adminRequest } from '../client/admin-client.js';
import { defaultStateDir } from '../paths.js';
import { brokerSocketPath, stringOption } from './command.js';
import type { CliIo } from './output.js';

/** The running broker's state dir (STATUS `state_dir`), or null: none answers, or it has none. */
export async function runningBrokerStateDir(
  socketPath: string,
  timeoutMs = 1000,
): Promise<string | null> {
  try {
    const reply = await adminRequest(
      socketPath,
      { verb: AdminVerb.STATUS, json: true },
      { timeoutMs: Math.min(timeoutMs, 1000) },
    );
    const dir = (JSON.parse(reply.body) as { state_dir?: unknown }).state_dir;
    return typeof dir === 'string' && dir !== '' ? dir : null;
  } catch {
    // No broker running (or an older one).
    return null;
  }
}

/** --state-dir, else the running broker's, else the default. */
export async function resolveStateDir(args: ParsedArgs, io: CliIo): Promise<string> {
  const flag = stringOption(args, 'state-dir');
  if (flag !== undefined && flag !== '') return flag;
  return (await runningBrokerStateDir(brokerSocketPath(args, io.env))) ?? defaultStateDir(io.env);
}
