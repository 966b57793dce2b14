// Where daemon and broker sockets may live (DESIGN §5): in a directory only
// its owner can write, owned by us; the socket file itself mode 0600. A
// stale socket file (nobody accepting) is replaced; a live one is refused.
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { BackendSdkError } from './errors.js';

export type PrivateSocketErrorCode = 'UNSAFE_DIRECTORY' | 'ADDRESS_IN_USE' | 'NOT_A_SOCKET';

export class PrivateSocketError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:PrivateSocketError';
  override readonly name = 'PrivateSocketError';
  declare readonly code: PrivateSocketErrorCode;
  readonly path: string;
  constructor(code: PrivateSocketErrorCode, path: string, message: string) {
    super(code, message);
    this.path = path;
  }
}

/** Creates `dir` (mode 0700) if missing; refuses one that is not ours or writable by others. */
export async function ensurePrivateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory())
    throw new PrivateSocketError(
      'UNSAFE_DIRECTORY',
      dir,
      `${dir} is not a directory (a symlink is not accepted)`,
    );
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new PrivateSocketError(
      'UNSAFE_DIRECTORY',
      dir,
      `${dir} is owned by uid ${info.uid}, not by us (uid ${uid})`,
    );
  }
  if ((info.mode & 0o022) !== 0) {
    throw new PrivateSocketError(
      'UNSAFE_DIRECTORY',
      dir,
      `${dir} is writable by group or others (mode ${(info.mode & 0o777).toString(8)}); use a 0700 directory`,
    );
  }
}

function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Makes `path` bindable: checks its directory, removes a stale socket file,
 * refuses a live socket (ADDRESS_IN_USE) or a file that is not a socket.
 */
export async function preparePrivateSocketPath(path: string): Promise<void> {
  await ensurePrivateDirectory(dirname(path));
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!info.isSocket())
    throw new PrivateSocketError(
      'NOT_A_SOCKET',
      path,
      `${path} exists and is not a socket; refusing to replace it`,
    );
  if (await isLive(path))
    throw new PrivateSocketError(
      'ADDRESS_IN_USE',
      path,
      `${path} is already served by a running process`,
    );
  await unlink(path);
}
