// The broker's first safety rail: it will not run as root unless told to.
// A root broker spawns root daemons and hands them to every peer its policy
// admits, so running that way must be a decision (allowRoot / --allow-root /
// HANDOFF_ALLOW_ROOT=1), never an accident of `sudo`.
import { BrokerError } from './errors.js';

export type RootRefusalErrorCode = 'RUNNING_AS_ROOT';

/** The broker was started as root (euid 0) without the opt-in. */
export class RootRefusalError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:RootRefusalError';
  override readonly name = 'RootRefusalError';
  declare readonly code: RootRefusalErrorCode;
  constructor(message: string) {
    super('RUNNING_AS_ROOT', message);
  }
}

/** The environment variable that opts in for every broker of a process tree (test runs, CI). */
export const ALLOW_ROOT_ENV = 'HANDOFF_ALLOW_ROOT';

/** Whether `env` opts in: `HANDOFF_ALLOW_ROOT=1` (or `true`). */
export function allowRootFromEnv(env: NodeJS.ProcessEnv): boolean {
  const value = env[ALLOW_ROOT_ENV];
  return value === '1' || value === 'true';
}

/**
 * Throws RootRefusalError when this process runs as root and nothing opted
 * in. An explicit `allowRoot: false` ignores the environment (so a test run
 * that opts in as a whole can still see the refusal). `euid` is a parameter
 * so a test can ask about root without being root.
 */
export function refuseRoot(
  allowRoot: boolean | undefined,
  env: NodeJS.ProcessEnv = process.env,
  euid: number | undefined = process.geteuid?.(),
): void {
  if (euid !== 0 || allowRoot === true) return;
  if (allowRoot === undefined && allowRootFromEnv(env)) return;
  throw new RootRefusalError(
    'refusing to run as root: a root broker spawns its daemons as root and hands them to ' +
      'every peer its policy admits. Run it as an ordinary user, or pass --allow-root ' +
      `(BrokerOptions.allowRoot, or ${ALLOW_ROOT_ENV}=1) if you mean it`,
  );
}
