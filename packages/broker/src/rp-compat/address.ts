// Where running-process (RP) clients look for the shared v1 broker (DESIGN
// §2.8): the path, its per-user-and-machine hash, and making its directory.
// Listening there is rp-compat/listener.ts; this file only computes and checks.
import { readFileSync } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { RpAddressError } from './errors.js';

/** sun_path holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** Reads a file's text, or returns undefined when it cannot be read (a fallback follows). */
export type FileReader = (path: string) => string | undefined;

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * RP's machine identity: the trimmed /etc/machine-id, else
 * /var/lib/dbus/machine-id, else `boot:` + the kernel's boot_id. An empty
 * file counts as absent (a container image may ship one empty).
 */
export function rpMachineId(read: FileReader = readIfPresent): string {
  for (const path of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    const id = read(path)?.trim();
    if (id) return id;
  }
  const boot = read('/proc/sys/kernel/random/boot_id')?.trim() ?? '';
  return `boot:${boot}`;
}

/** `<h>`: the lowercase hex of the first 8 bytes of BLAKE3("<uid>:<machine-id>"). */
export async function rpAddressHash(uid: number, machineId: string): Promise<string> {
  // Loaded here, not with the module: only --rp-compat needs it, and it
  // costs every broker start (an upgrade's successor included) ~50 ms of CPU.
  const { createBLAKE3 } = await import('hash-wasm');
  const hasher = await createBLAKE3();
  hasher.init();
  hasher.update(`${uid}:${machineId}`);
  return hasher.digest('hex').slice(0, 16);
}

export interface RpAddressInputs {
  env?: NodeJS.ProcessEnv;
  uid?: number;
  /** Overrides the machine-id files (tests). */
  readFile?: FileReader;
}

/**
 * `$XDG_RUNTIME_DIR/running-process/broker/rpb-v1-<h>-shared.sock` (an
 * absolute XDG_RUNTIME_DIR only), else `/tmp/running-process-<uid>/broker/…`.
 * Refuses PATH_TOO_LONG when the path would not fit in sun_path.
 */
export async function rpSharedBrokerPath(inputs: RpAddressInputs = {}): Promise<string> {
  const env = inputs.env ?? process.env;
  const uid = inputs.uid ?? process.getuid?.();
  if (uid === undefined)
    throw new RpAddressError('NO_UID', '', 'this platform has no uid; pass one as `uid`');
  const runtime = env.XDG_RUNTIME_DIR;
  const dir =
    runtime !== undefined && runtime !== '' && isAbsolute(runtime)
      ? join(runtime, 'running-process', 'broker')
      : join('/tmp', `running-process-${uid}`, 'broker');
  const hash = await rpAddressHash(uid, rpMachineId(inputs.readFile));
  const path = join(dir, `rpb-v1-${hash}-shared.sock`);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES)
    throw new RpAddressError(
      'PATH_TOO_LONG',
      path,
      `the running-process broker path ${path} is ${bytes} bytes; a socket path must be under 108 (shorten XDG_RUNTIME_DIR)`,
    );
  return path;
}

/**
 * Creates the socket's directory and the `running-process` one above it
 * (mode 0700 each) and refuses either when it is not a directory of ours
 * that only we can write: a planted `/tmp/running-process-<uid>` must not
 * get our socket.
 */
export async function ensureRpBrokerDir(socketPath: string): Promise<void> {
  const dir = join(socketPath, '..');
  const parent = join(dir, '..');
  const uid = process.getuid?.();
  for (const each of [parent, dir]) {
    await mkdir(each, { recursive: true, mode: 0o700 });
    const info = await lstat(each);
    let why: string | null = null;
    if (!info.isDirectory()) why = 'is not a directory (a symlink is not accepted)';
    else if (uid !== undefined && info.uid !== uid)
      why = `is owned by uid ${info.uid}, not by us (uid ${uid})`;
    else if ((info.mode & 0o022) !== 0)
      why = `is writable by group or others (mode ${(info.mode & 0o777).toString(8)}); use a 0700 directory`;
    if (why !== null) throw new RpAddressError('UNSAFE_DIRECTORY', each, `${each} ${why}`);
  }
}
