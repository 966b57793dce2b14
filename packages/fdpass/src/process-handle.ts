// ProcessHandle: one process held by an fd (a pidfd, Linux 5.3+) instead of
// by its pid number. A pid is recycled once its process is gone; the handle
// keeps naming the process it was opened on, and says when that one exits.
// peerIsProcess() asks, in one native call, whether the peer of a connected
// Unix socket is that process: what the broker client's endpoint cache checks
// on every cached connect. The syscalls are native/process_handle.cc's.
import type { Socket } from 'node:net';
import { errnoError, FdPassError, fromNative } from './errors.js';
import { loadNative, type NativeBinding } from './native-loader.js';
import { fdOrNull } from './node-interop.js';
import { Watcher } from './watcher.js';

/** The largest uid_t. */
const MAX_ID = 0xffff_ffff;

function processHandleNative(what: string): NativeBinding {
  const native = loadNative();
  // A prebuilt addon older than this module has no pidfd functions.
  if (typeof native.pidfdOpen !== 'function' || typeof native.peerIsProcess !== 'function') {
    throw new FdPassError(
      'ERR_NATIVE',
      `this build of the fdpass addon has no ${what}: rebuild it`,
    );
  }
  return native;
}

/**
 * A process, held open. The caller owns it and must close() it; until then
 * it keeps one fd. It never keeps the process alive and never reaps it.
 */
export class ProcessHandle {
  readonly pid: number;
  #fd: number;
  /** Once exited() is called: the watch on the pidfd, which owns the fd from then on. */
  #watcher: Watcher | null = null;
  #exit: Promise<void> | null = null;
  #settle: ((error?: Error) => void) | null = null;

  private constructor(pid: number, fd: number) {
    this.pid = pid;
    this.#fd = fd;
  }

  /**
   * pidfd_open(pid): a handle on the process that has `pid` now. Throws
   * FdPassError with the errno name as `code`: ESRCH when there is no such
   * process, ENOSYS where the kernel has no pidfd (before 5.3, or not
   * Linux), EMFILE when out of fds. TypeError for a pid that is not a
   * positive integer.
   */
  static open(pid: number): ProcessHandle {
    if (!Number.isInteger(pid) || pid <= 0 || pid > 0x7fff_ffff)
      throw new TypeError('Usage: ProcessHandle.open(pid: a positive integer)');
    const native = processHandleNative('ProcessHandle');
    try {
      return new ProcessHandle(pid, native.pidfdOpen(pid));
    } catch (err) {
      throw fromNative(err, `pid ${pid}`);
    }
  }

  /** The pidfd; -1 once closed. Borrowed: close() is the only way to release it. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Whether the process has exited (a zombie not yet reaped has). Throws
   * FdPassError ERR_INVALID_FD once the handle is closed.
   */
  hasExited(): boolean {
    const result = processHandleNative('ProcessHandle').processExited(pidfdOf(this));
    if (result < 0) throw errnoError(-result, 'poll', `pidfd of pid ${this.pid}`);
    return result === 1;
  }

  /**
   * Resolves once the process exits, at once if it has: the kernel marks
   * the pidfd readable then, so the wait is one epoll registration, not a
   * timer, and it cannot be fooled by the pid being reused. Every call
   * returns the same promise. It rejects with FdPassError ERR_INVALID_FD if
   * the handle is closed first (or already is). `ref: false` lets the
   * process exit while it waits, as an unref'd timer would; once any call
   * asks for `ref: true` (the default) the wait keeps the event loop alive.
   */
  exited(options: { ref?: boolean } = {}): Promise<void> {
    const ref = options.ref ?? true;
    if (this.#exit !== null) {
      if (ref) this.#watcher?.setRef(true);
      return this.#exit;
    }
    const native = processHandleNative('ProcessHandle');
    let fd: number;
    try {
      fd = pidfdOf(this);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#exit = new Promise<void>((resolve, reject) => {
      this.#settle = (error) => {
        this.#settle = null;
        if (error) reject(error);
        else resolve();
      };
    });
    // A caller who dropped the promise and then closed the handle must not
    // get an unhandled rejection; one who awaits it still sees the error.
    this.#exit.catch(() => {});
    const done = native.processExited(fd);
    if (done === 1) {
      this.#settle?.();
      return this.#exit;
    }
    if (done < 0) {
      this.#settle?.(errnoError(-done, 'poll', `pidfd of pid ${this.pid}`));
      return this.#exit;
    }
    let watcher: Watcher;
    try {
      // From here the watcher owns the fd: close() closes it through the watcher.
      watcher = new Watcher(native, fd, (status) => this.#onExitPoll(status));
    } catch (err) {
      this.#settle?.(fromNative(err, `pidfd of pid ${this.pid}`));
      return this.#exit;
    }
    this.#watcher = watcher;
    const rc = watcher.setEvents(native.constants.UV_READABLE);
    if (rc < 0) {
      this.#settle?.(errnoError(-rc, 'uv_poll_start', `pidfd of pid ${this.pid}`));
      return this.#exit;
    }
    if (!ref) watcher.setRef(false);
    return this.#exit;
  }

  #onExitPoll(status: number): void {
    // Readable (the process exited) or a poll error: either way, stop
    // watching; a level-triggered watch on an exited pidfd would spin.
    this.#watcher?.setEvents(0);
    if (status < 0) this.#settle?.(errnoError(-status, 'uv_poll', `pidfd of pid ${this.pid}`));
    else this.#settle?.();
  }

  /** Releases the fd (and any exited() wait, which then rejects). Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    const watcher = this.#watcher;
    this.#watcher = null;
    if (watcher !== null) watcher.close();
    else loadNative().closeFd(fd);
    this.#settle?.(
      new FdPassError(
        'ERR_INVALID_FD',
        `the handle of pid ${this.pid} was closed before it exited`,
      ),
    );
  }
}

/**
 * Whether the peer of the connected Unix socket `target` is the process
 * behind `handle`, running as `uid`: SO_PEERCRED must name its pid and
 * `uid`, and the process must not have exited (its pid could be another
 * process's by now). One native call, no allocation. null when the kernel
 * has no peer to name yet (a connect still in progress) or the socket
 * cannot be asked (closed, not a Unix socket); ask again once connected.
 * Throws FdPassError ERR_INVALID_FD for a closed handle.
 */
export function peerIsProcess(
  target: number | Socket,
  handle: ProcessHandle,
  uid: number,
): boolean | null {
  if (!Number.isInteger(uid) || uid < 0 || uid > MAX_ID)
    throw new TypeError('Usage: peerIsProcess(fd | net.Socket, ProcessHandle, uid)');
  const fd = typeof target === 'number' ? target : fdOrNull(target);
  if (fd === null) return null;
  const verdict = processHandleNative('peerIsProcess').peerIsProcess(
    fd,
    pidfdOf(handle),
    handle.pid,
    uid,
  );
  return verdict < 0 ? null : verdict === 1;
}

/** The handle's pidfd; FdPassError ERR_INVALID_FD once it is closed. */
function pidfdOf(handle: ProcessHandle): number {
  if (handle.fd < 0)
    throw new FdPassError('ERR_INVALID_FD', `the handle of pid ${handle.pid} is closed`);
  return handle.fd;
}
