// doctor's view of the definitions a running broker actually loaded (admin
// CONFIG): what it serves, where from, the problems it reports and a failed
// reload. doctor.ts falls back to reading files when no broker answers.
import { AdminVerb } from '@handoff/protocol';
import { adminRequest } from '../client/admin-client.js';
import type { CheckLine } from './output.js';

const NAME = 'service definitions';

interface ConfigBody {
  services?: { name: string; version: string; source: string }[];
  errors?: { file: string; field: string | null; message: string }[];
  config_reload?: {
    failure: {
      at_unix_ms: number;
      message: string;
      kept_definitions: number;
      kept_since_unix_ms: number;
    } | null;
  };
}

/**
 * The broker's loaded definitions as check lines, or null when no broker
 * answers at `socketPath` (or its answer is not a CONFIG document).
 */
export async function brokerDefinitionChecks(
  socketPath: string,
  timeoutMs: number,
): Promise<CheckLine[] | null> {
  let body: ConfigBody;
  try {
    const reply = await adminRequest(
      socketPath,
      { verb: AdminVerb.CONFIG, json: true },
      { timeoutMs },
    );
    if (reply.exitCode !== 0) return null;
    body = JSON.parse(reply.body) as ConfigBody;
  } catch {
    return null;
  }
  if (!Array.isArray(body.services)) return null;
  const checks: CheckLine[] = [];
  const sources = [...new Set(body.services.map((s) => s.source))];
  const names = body.services.map((s) => `${s.name}@${s.version}`).join(', ');
  checks.push(
    body.services.length === 0
      ? {
          name: NAME,
          verdict: 'WARN',
          detail: 'the running broker has no services loaded; every Hello is refused',
        }
      : {
          name: NAME,
          verdict: 'PASS',
          detail: `${body.services.length} loaded by the running broker (${names}) from ${sources.join(', ')}`,
        },
  );
  for (const e of body.errors ?? [])
    checks.push({
      name: NAME,
      verdict: 'FAIL',
      detail: `the broker reports: ${e.message.startsWith(e.file) ? e.message : `${e.file}: ${e.message}`}`,
    });
  const failure = body.config_reload?.failure;
  if (failure)
    checks.push({
      name: 'config reload',
      verdict: 'FAIL',
      detail:
        `the last reload failed at ${new Date(failure.at_unix_ms).toISOString()}: ${failure.message}; ` +
        `the broker keeps ${failure.kept_definitions} definitions from ${new Date(failure.kept_since_unix_ms).toISOString()}`,
    });
  return checks;
}
