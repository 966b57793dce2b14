// The flags handoff-broker commands share (--socket, --json, --timeout),
// their help lines, and reading them: where the broker socket is, integer
// flags. The command shape, parsing and UsageError are @handoff/backend-sdk/cli's.
import {
  type OptionHelp,
  type OptionSpecs,
  type ParsedArgs,
  UsageError,
} from '@handoff/backend-sdk/cli';
import { defaultBrokerSocketPath } from '../paths.js';

export const socketOption: OptionSpecs = { socket: { type: 'string' } };
export const jsonOption: OptionSpecs = { json: { type: 'boolean' } };
export const timeoutOption: OptionSpecs = { timeout: { type: 'string' } };

export const SOCKET_HELP: OptionHelp = [
  '--socket PATH',
  'the broker socket (default: $HANDOFF_BROKER_SOCKET, else the per-user default)',
];
export const JSON_HELP: OptionHelp = [
  '--json',
  'print one JSON document (schema_version 1, ok; code and message on failure)',
];
export const TIMEOUT_HELP: OptionHelp = [
  '--timeout MS',
  'how long to wait for the broker (default 5000)',
];

/** --socket, else $HANDOFF_BROKER_SOCKET, else the per-user default. */
export function brokerSocketPath(args: ParsedArgs, env: NodeJS.ProcessEnv): string {
  const flag = args.values.socket;
  if (typeof flag === 'string' && flag !== '') return flag;
  const fromEnv = env.HANDOFF_BROKER_SOCKET;
  if (fromEnv) return fromEnv;
  return defaultBrokerSocketPath(env);
}

/** A non-negative integer flag (milliseconds, a uid); usage error otherwise. */
export function integerOption(
  args: ParsedArgs,
  name: string,
  fallback: number,
  command: string,
): number {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw new UsageError(
      `${name.length === 1 ? '-' : '--'}${name} takes a non-negative integer, not ${JSON.stringify(raw)}`,
      command,
    );
  return Number(raw);
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const raw = args.values[name];
  return typeof raw === 'string' ? raw : undefined;
}
