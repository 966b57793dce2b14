// Where a daemon listens when nobody told it: a pure function of the
// environment and a uid, so a daemon and the clients that dial it compute
// the same path without talking. Creating the (private) directory is
// serveDaemon's job.
import { isAbsolute, join } from 'node:path';
import { validateServiceName } from '@handoff/protocol';
import { BROKER_ENV } from './broker-attachment.js';
import { BackendSdkError } from './errors.js';

export type DaemonPathErrorCode = 'NO_UID';

/** No default path can be computed: the platform has no uid and none was passed. */
export class DaemonPathError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:DaemonPathError';
  override readonly name = 'DaemonPathError';
  declare readonly code: DaemonPathErrorCode;
}

/** Set but empty counts as unset, as shells treat XDG_* variables. */
function nonEmpty(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const value = env[key];
  return value === undefined || value === '' ? undefined : value;
}

function currentUid(): number {
  if (typeof process.getuid !== 'function') {
    throw new DaemonPathError(
      'NO_UID',
      'this platform has no uid; pass one to defaultDaemonSocketPath(service, env, uid)',
    );
  }
  return process.getuid();
}

/**
 * `$HANDOFF_ENDPOINT` (set by a broker for the daemons it spawns: it probes
 * and hands off to exactly that path), else
 * `$XDG_RUNTIME_DIR/handoff/daemons/<service>.sock` when XDG_RUNTIME_DIR is
 * absolute, else `/tmp/handoff-<uid>/daemons/<service>.sock`.
 *
 * The fallback is a literal `/tmp`, not `os.tmpdir()`, for the broker's
 * reason: a daemon and its clients may run with different TMPDIRs. The
 * `daemons/` level keeps a service named `broker` or `control` clear of the
 * broker's own sockets in the same directory. Throws a TypeError for a
 * service name outside `[a-z0-9-]{1,64}`, which could otherwise leave the
 * directory (`../x`).
 */
export function defaultDaemonSocketPath(
  service: string,
  env: NodeJS.ProcessEnv = process.env,
  uid?: number,
): string {
  const verdict = validateServiceName(service);
  if (!verdict.ok) throw new TypeError(verdict.reason);
  const explicit = nonEmpty(env, BROKER_ENV.endpoint);
  if (explicit !== undefined) return explicit;
  const runtime = nonEmpty(env, 'XDG_RUNTIME_DIR');
  const base =
    runtime !== undefined && isAbsolute(runtime)
      ? join(runtime, 'handoff')
      : join('/tmp', `handoff-${uid ?? currentUid()}`);
  return join(base, 'daemons', `${service}.sock`);
}
