// Binding the broker's own sockets so that an upgrade can hand them on:
// FdServer.listen(path).close() unlinks `path` if it is still the file it
// bound, which after an upgrade is the successor's live socket. So the
// broker binds a temporary name, links the file into place (link(2) never
// replaces an existing file) and drops the temporary name: the FdServer
// then owns nothing by path, and the broker removes `path` itself, by
// identity, when it really shuts down (unlinkOwnSocket).
import { randomBytes } from 'node:crypto';
import { linkSync, lstatSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PrivateSocketError } from '@handoff/backend-sdk';
import { FdServer, type ListenOptions } from '@handoff/fdpass';

/** A socket file's identity: removed only while it is still this one. */
export interface SocketFile {
  dev: number;
  ino: number;
}

/**
 * Listens at `path` (which preparePrivateSocketPath made bindable) without
 * the server owning the file. Refuses ADDRESS_IN_USE if a file appeared
 * at `path` meanwhile.
 */
export async function listenKeepingFile(
  path: string,
  options: ListenOptions,
): Promise<{ server: FdServer; file: SocketFile }> {
  const temporary = join(dirname(path), `.h${randomBytes(4).toString('hex')}`);
  const server = await FdServer.listen(temporary, options);
  try {
    linkSync(temporary, path);
  } catch (error) {
    server.close();
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new PrivateSocketError('ADDRESS_IN_USE', path, `${path} appeared while binding it`);
    throw error;
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // close() above removed it already.
    }
  }
  const { dev, ino } = lstatSync(path);
  return { server, file: { dev, ino } };
}

/** The identity of the socket file at `path` now (after a takeover, the successor's own). */
export function socketFileAt(path: string): SocketFile | null {
  try {
    const { dev, ino } = lstatSync(path);
    return { dev, ino };
  } catch {
    return null;
  }
}

/** Removes `path` if it is still `file`; quiet when it is gone or replaced. */
export function unlinkOwnSocket(path: string, file: SocketFile | null): void {
  if (file === null) return;
  try {
    const st = lstatSync(path);
    if (st.dev === file.dev && st.ino === file.ino) unlinkSync(path);
  } catch {
    // Already gone: nothing to clean up.
  }
}
