// Where the broker looks by default: its socket, its service-definition
// directory, its state directory and the user's systemd units. Pure functions of an environment and a uid/home so that the
// broker, its CLI and clients compute the same answer; creating and
// permission-checking those directories belongs to the server.
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { BrokerError } from './errors.js';

/** An environment variable's value, treating "set but empty" as unset (as shells do for XDG_*). */
function nonEmpty(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const value = env[key];
  return value === undefined || value === '' ? undefined : value;
}

function currentUid(): number {
  if (typeof process.getuid !== 'function') {
    throw new BrokerError(
      'NO_UID',
      'this platform has no uid; pass one to defaultBrokerSocketPath(env, uid)',
    );
  }
  return process.getuid();
}

/**
 * `$HANDOFF_BROKER_SOCKET`, else `$XDG_RUNTIME_DIR/handoff/broker.sock` when
 * XDG_RUNTIME_DIR is an absolute path, else `/tmp/handoff-<uid>/broker.sock`.
 *
 * The fallback is a literal `/tmp`, not `os.tmpdir()`: a client and the broker
 * may run with different TMPDIRs and must still meet at one well-known path;
 * the uid in the name keeps users apart (the directory itself is 0700, §5).
 * A relative XDG_RUNTIME_DIR is ignored, as the XDG spec requires, because it
 * would resolve differently from every working directory.
 */
export function defaultBrokerSocketPath(
  env: NodeJS.ProcessEnv = process.env,
  uid: number = currentUid(),
): string {
  const explicit = nonEmpty(env, 'HANDOFF_BROKER_SOCKET');
  if (explicit !== undefined) return explicit;
  const runtime = nonEmpty(env, 'XDG_RUNTIME_DIR');
  if (runtime !== undefined && isAbsolute(runtime)) return join(runtime, 'handoff', 'broker.sock');
  return join('/tmp', `handoff-${uid}`, 'broker.sock');
}

/**
 * `$HANDOFF_CONFIG_DIR`, else `$XDG_CONFIG_HOME/handoff/services` (absolute
 * only, per the XDG spec), else `<home>/.config/handoff/services`.
 */
export function defaultConfigDir(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): string {
  const explicit = nonEmpty(env, 'HANDOFF_CONFIG_DIR');
  if (explicit !== undefined) return explicit;
  const config = nonEmpty(env, 'XDG_CONFIG_HOME');
  if (config !== undefined && isAbsolute(config)) return join(config, 'handoff', 'services');
  return join(home, '.config', 'handoff', 'services');
}

/**
 * `$XDG_STATE_HOME/handoff` (absolute only, per the XDG spec), else
 * `<home>/.local/state/handoff` — the same directory as the systemd unit's
 * default (src/systemd/units.ts DEFAULT_UNIT_STATE_DIR). Daemon logs go
 * under its `logs/`.
 */
export function defaultStateDir(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): string {
  const state = nonEmpty(env, 'XDG_STATE_HOME');
  if (state !== undefined && isAbsolute(state)) return join(state, 'handoff');
  return join(home, '.local', 'state', 'handoff');
}

/**
 * `$XDG_CONFIG_HOME/systemd/user` (absolute only), else
 * `<home>/.config/systemd/user`: where `install --systemd` writes the
 * broker's units and `doctor` reads them back.
 */
export function defaultUserUnitDir(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): string {
  const config = nonEmpty(env, 'XDG_CONFIG_HOME');
  if (config !== undefined && isAbsolute(config)) return join(config, 'systemd', 'user');
  return join(home, '.config', 'systemd', 'user');
}
