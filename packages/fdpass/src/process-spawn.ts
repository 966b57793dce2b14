// spawnProcess: starts a program without fork() (native/process_spawn.h says
// why: a forking parent's event loop stalls for milliseconds), with fds of
// the caller's choosing as its stdio, and learns of its exit from a pidfd.
// It offers the part of child_process.ChildProcess a supervisor uses: pid,
// 'exit' (code, signal), kill(), pipes to its stdio, ref()/unref().
import { EventEmitter } from 'node:events';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { FdPassError, fromNative } from './errors.js';
import { loadNative, type NativeBinding, type NativeSpawnArgs } from './native-loader.js';
import { Watcher } from './watcher.js';

/** What one child fd becomes: /dev/null, a new pipe to us, or a dup of our fd. */
export type SpawnStdio = 'ignore' | 'pipe' | number;

/** How spawnProcess() starts a child. */
export interface SpawnProcessOptions {
  /** The child's working directory; default: ours. */
  cwd?: string | undefined;
  /** The child's whole environment (undefined values are left out); default: ours. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Child fd i gets stdio[i]; fds beyond the list are closed. Default: three 'ignore'. */
  stdio?: readonly SpawnStdio[] | undefined;
  /** A new session and process group (setsid), as child_process's `detached`. */
  detached?: boolean | undefined;
}

/** Where a pidfd is missing (Linux before 5.3), how often exit is polled. */
const REAP_POLL_MS = 100;

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/** The events of a SpawnedProcess. */
export interface SpawnedProcessEvents {
  /** Once, after the child was reaped: its exit status or null, the signal that ended it or null. */
  exit: [code: number | null, signal: NodeJS.Signals | null];
}

/**
 * A running child. 'exit' (code, signal) fires once, after the child has
 * been reaped: code is its exit status or null, signal the name of the
 * signal that ended it or null. There is no 'error' event: a program that
 * cannot be started makes spawnProcess() throw.
 */
export class SpawnedProcess extends EventEmitter<SpawnedProcessEvents> {
  /** The child's pid; it names the child until 'exit' (the child is reaped only then). */
  readonly pid: number;
  /** Our end of each 'pipe' entry, by child fd; null elsewhere. */
  readonly stdio: readonly (Socket | null)[];
  /** The exit status once 'exit' fired with one; null before, or after a signal. */
  exitCode: number | null = null;
  /** The signal that ended the child, once 'exit' fired; null otherwise. */
  signalCode: NodeJS.Signals | null = null;
  readonly #native: NativeBinding;
  #watcher: Watcher | null = null;
  #poll: NodeJS.Timeout | null = null;
  #reaped = false;

  /** @internal spawnProcess() makes these; the pidfd becomes this object's. */
  constructor(pid: number, pidfd: number, stdio: (Socket | null)[]) {
    super();
    const native = loadNative();
    this.#native = native;
    this.pid = pid;
    this.stdio = stdio;
    if (pidfd >= 0) {
      // The watcher owns the pidfd from here and closes it with itself.
      this.#watcher = new Watcher(native, pidfd, () => this.#reap());
      const status = this.#watcher.setEvents(native.constants.UV_READABLE);
      if (status < 0) this.#pollInstead();
    } else {
      this.#pollInstead();
    }
  }

  /** Our end of the child's stdout, when stdio[1] was 'pipe'. */
  get stdout(): Socket | null {
    return this.stdio[1] ?? null;
  }

  /** Our end of the child's stderr, when stdio[2] was 'pipe'. */
  get stderr(): Socket | null {
    return this.stdio[2] ?? null;
  }

  /** Sends `signal`; false once the child is gone (its pid may be reused then). */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.#reaped) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** The child's exit keeps the event loop alive (the default). */
  ref(): void {
    this.#watcher?.setRef(true);
    this.#poll?.ref();
  }

  /** Lets the event loop end while the child runs; 'exit' still fires while it lasts. */
  unref(): void {
    this.#watcher?.setRef(false);
    this.#poll?.unref();
  }

  #pollInstead(): void {
    this.#watcher?.close();
    this.#watcher = null;
    this.#poll = setInterval(() => this.#reap(), REAP_POLL_MS);
  }

  #reap(): void {
    if (this.#reaped) return;
    let status: [number, number] | null;
    try {
      status = this.#native.reapChild(this.pid);
    } catch {
      // waitpid cannot fail for our own child but with ECHILD, read as gone.
      status = [-1, 0];
    }
    if (status === null) return;
    this.#reaped = true;
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
    const [code, signal] = status;
    this.exitCode = code >= 0 ? code : null;
    this.signalCode = signal > 0 ? (signalNames.get(signal) ?? null) : null;
    this.emit('exit', this.exitCode, this.signalCode);
  }
}

/**
 * Starts `command` with `args`. A command without a slash is looked for in
 * the child's PATH, as execvp would; one with a slash is taken relative to
 * the child's cwd. Throws FdPassError with the errno name as `code`
 * (ENOENT: no such program or cwd, EACCES: not executable) and starts
 * nothing; TypeError for a NUL byte in any string. The calling thread
 * waits until the child has exec'd (about a millisecond for a Node
 * program); spawnProcessAsync() does not wait at all.
 */
export function spawnProcess(
  command: string,
  args: readonly string[],
  options: SpawnProcessOptions = {},
): SpawnedProcess {
  const call = spawnCall(command, args, options);
  let spawned: Int32Array;
  try {
    spawned = call.native.spawnProcess(...call.args);
  } catch (err) {
    throw fromNative(err, command);
  }
  return spawnedProcess(spawned, call.stdio);
}

/**
 * spawnProcess() with the exec on a libuv pool thread: this thread only
 * prepares the child's fds (the fds in `stdio` may be closed once it
 * returns) and goes on. Rejects with the errors spawnProcess() throws;
 * throws TypeError at once for bad arguments.
 */
export async function spawnProcessAsync(
  command: string,
  args: readonly string[],
  options: SpawnProcessOptions = {},
): Promise<SpawnedProcess> {
  const call = spawnCall(command, args, options);
  let pending: Promise<Int32Array>;
  try {
    pending = call.native.spawnProcessAsync(...call.args);
  } catch (err) {
    throw fromNative(err, command);
  }
  let spawned: Int32Array;
  try {
    spawned = await pending;
  } catch (err) {
    throw fromNative(err, command);
  }
  return spawnedProcess(spawned, call.stdio);
}

/** What both spawn calls hand the addon, checked and converted. */
function spawnCall(
  command: string,
  args: readonly string[],
  options: SpawnProcessOptions,
): { native: NativeBinding; args: NativeSpawnArgs; stdio: readonly SpawnStdio[] } {
  const native = loadNative();
  if (typeof native.spawnProcessAsync !== 'function') {
    throw new FdPassError(
      'ERR_NATIVE',
      'this build of the fdpass addon has no spawnProcess: rebuild it',
    );
  }
  const env = options.env ?? process.env;
  const envp: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined) envp.push(`${name}=${value}`);
  }
  const stdio = options.stdio ?? ['ignore', 'ignore', 'ignore'];
  const specs = new Int32Array(stdio.length);
  stdio.forEach((entry, i) => {
    if (entry === 'ignore') specs[i] = native.spawnConstants.STDIO_NULL;
    else if (entry === 'pipe') specs[i] = native.spawnConstants.STDIO_PIPE;
    else if (Number.isInteger(entry) && entry >= 0) specs[i] = entry;
    else throw new TypeError(`spawnProcess: stdio[${i}] must be 'ignore', 'pipe' or an fd`);
  });
  const cwd = options.cwd ?? '';
  const file = executablePath(command, env.PATH, cwd === '' ? process.cwd() : cwd);
  return {
    native,
    args: [file, [command, ...args], envp, cwd, specs, options.detached === true],
    stdio,
  };
}

/** The object for a started child: [pid, pidfd, our end per stdio entry]. */
function spawnedProcess(spawned: Int32Array, stdio: readonly SpawnStdio[]): SpawnedProcess {
  const pipes = stdio.map((_, i) => {
    const fd = spawned[2 + i] as number;
    if (fd < 0) return null;
    // Readable where the child writes (1 and up), writable where it reads (0).
    return new Socket({ fd, readable: i !== 0, writable: i === 0 });
  });
  return new SpawnedProcess(spawned[0] as number, spawned[1] as number, pipes);
}

/** execvp's search, against the child's PATH and cwd; `command` itself when nothing matches. */
function executablePath(command: string, path: string | undefined, cwd: string): string {
  if (command.includes('/') || command === '') return command;
  for (const dir of (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const candidate = join(isAbsolute(dir) ? dir : resolve(cwd, dir || '.'), command);
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here.
    }
  }
  return command;
}
