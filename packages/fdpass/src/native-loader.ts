// Finds and loads the compiled addon, and describes its surface in types. The
// only module that knows where fdpass.node lives; it works from src/ (tests
// run the TypeScript sources) and from dist/ (the published build). A local
// build (build/Release, build/Debug) wins; otherwise the prebuild shipped for
// this platform/arch/libc in prebuilds/, picked by node-gyp-build's rules.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FdPassError, registerErrnoNames } from './errors.js';

/** What a watcher calls on readiness: status 0 or a negative libuv error, and the events. */
export type WatcherCallback = (status: number, events: number) => void;

/** A native watcher, as watch() returns it: opaque, taken by the watch* functions. */
export type WatcherHandle = object & { readonly __watcher: unique symbol };

/** Counters of the shared epoll set (native/nested_poll.h). */
export interface NativeNestedPollStats {
  epollFd: number;
  /** Fresh watchers alive. */
  entries: number;
  /** Of those, the ones in the epoll set (watching something). */
  registered: number;
  /** Times the loop found the set readable. */
  wakes: number;
  /** Events skipped because their watcher was closed earlier in the same batch. */
  stale: number;
}

export interface NativeSocketInfo {
  family: number;
  type: number;
  protocol: number;
  local: Buffer;
  remote: Buffer;
}

export interface NativeDecodedAddress {
  family: number;
  kind: 'inet' | 'inet6' | 'unix' | 'unknown';
  address?: string;
  port?: number;
  flowinfo?: number;
  scopeId?: number;
  path?: Buffer;
}

export interface NativeConstants {
  AF_UNIX: number;
  AF_INET: number;
  AF_INET6: number;
  SOCK_STREAM: number;
  SOCK_DGRAM: number;
  SOCK_SEQPACKET: number;
  UV_READABLE: number;
  UV_WRITABLE: number;
  MAX_FDS_PER_MESSAGE: number;
  BATCH_DRAINED: number;
  BATCH_BUDGET: number;
  BATCH_EOF: number;
  /** A stream read came back short (no fds): stop unless draining everything. */
  BATCH_SHORT: number;
  /** Per-message codes in recv records. */
  RECV_OK: number;
  RECV_TOO_MANY_FDS: number;
  RECV_CONTROL_TRUNCATED: number;
  RECV_DATA_TRUNCATED: number;
  EAGAIN: number;
  EINPROGRESS: number;
  /** errno (as a decimal string) → symbolic name, for this platform. */
  ERRNO_NAMES: Record<string, string>;
}

/** What spawnProcess and spawnProcessAsync take. */
export type NativeSpawnArgs = [
  file: string,
  argv: readonly string[],
  envp: readonly string[],
  cwd: string,
  stdio: Int32Array,
  newSession: boolean,
];

/**
 * The addon. Functions documented as "-errno" return a negative errno
 * instead of throwing (hot paths); the others throw an Error carrying
 * code/errno/syscall, which callers convert with fromNative().
 */
export interface NativeBinding {
  /**
   * A readiness watch on `fd`, which the watch owns from then on (on a
   * throw the caller still does). It holds `callback` only weakly, and
   * strongly while watching: whoever keeps the handle keeps the callback
   * too (watcher.ts). `fresh`: fdpass made fd itself (accept4, socketpair,
   * connect), so it is a non-blocking socket nothing else watches; it joins
   * the environment's shared epoll set (native/nested_poll.h) instead of
   * getting a uv_poll_t.
   */
  watch(fd: number, callback: WatcherCallback, fresh: boolean): WatcherHandle;
  /** 0 or a negative libuv error. */
  watchEvents(handle: WatcherHandle, mask: number): number;
  watchRef(handle: WatcherHandle, ref: boolean): void;
  /** Stops watching and closes the fd. Idempotent. */
  watchClose(handle: WatcherHandle): void;
  socketPair(type: number): [number, number];
  connect(path: string, type: number): [fd: number, inProgress: boolean];
  listen(path: string, type: number, backlog: number, mode: number): number;
  /** fd or -errno */
  accept(fd: number): number;
  /** bytes sent or -errno */
  send(fd: number, data: Uint8Array, offset: number, fds: Int32Array | null, count: number): number;
  /**
   * Sends `count` (1..64) SOCK_SEQPACKET/SOCK_DGRAM messages in one
   * sendmmsg; layout holds (bytes, fdCount) per message, data and fds their
   * contents back to back. Messages sent (>= 1) or -errno.
   */
  sendMany(
    fd: number,
    data: Uint8Array,
    layout: Int32Array,
    fds: Int32Array,
    count: number,
  ): number;
  /**
   * Reads up to `budget` messages. Fills `records` with [status (BATCH_* or
   * -errno), count], then per message [code (RECV_*), bytes, fdCount, fds…
   * (only for RECV_OK)]. Returns how many bytes the messages brought, in
   * order (none for a rejected SEQPACKET message): takeReceived copies them
   * out, and the next recv drops them. A stream read that comes back short
   * with no fds ends the batch (BATCH_SHORT) without asking the kernel again.
   */
  recv(
    fd: number,
    records: Int32Array,
    budget: number,
    maxFds: number,
    maxBytes: number,
    seqpacket: boolean,
  ): number;
  /** Copies the last recv's bytes into `into`, exactly as long as recv returned. */
  takeReceived(into: Uint8Array): void;
  socketType(fd: number): number;
  socketFamily(fd: number): number;
  isListening(fd: number): number;
  /** SO_ERROR value or -errno */
  socketError(fd: number): number;
  /** 0 or -errno */
  shutdownWrite(fd: number): number;
  setNonBlocking(fd: number): number;
  dupFd(fd: number): number;
  /** 0 or -errno */
  closeFd(fd: number): number;
  /** The first `count` fds: each distinct one closed once; 0 or the first -errno. */
  closeFds(fds: Int32Array, count: number): number;
  /** F_DUPFD_CLOEXEC of the first `count` fds; repeated fds share one duplicate. Throws. */
  dupFds(fds: Int32Array, count: number): Int32Array;
  /** bytes or -errno */
  queuedOutput(fd: number): number;
  /** null where there is no shared epoll set (not Linux). */
  nestedPollStats(): NativeNestedPollStats | null;
  /** bytes or -errno */
  sendBufferSize(fd: number): number;
  /** One datagram to the AF_UNIX SOCK_DGRAM socket at `address` (exact sun_path bytes); bytes sent. Throws. */
  sendDatagram(address: Uint8Array, data: Uint8Array): number;
  /** memfd_create(name, MFD_CLOEXEC): the new fd. Throws. */
  memfdCreate(name: string): number;
  socketInfo(fd: number): NativeSocketInfo;
  /**
   * posix_spawn of `file` (no PATH search); stdio[i] is an fd to dup or a
   * spawnConstants value. [pid, pidfd (-1: none), our end per stdio entry
   * (-1 where none)]. Throws.
   */
  spawnProcess(...args: NativeSpawnArgs): Int32Array;
  /** spawnProcess with posix_spawn on a pool thread; the fds are prepared before it returns. */
  spawnProcessAsync(...args: NativeSpawnArgs): Promise<Int32Array>;
  /** null while `pid` runs, else [exit status or -1, signal or 0]; reaps it. Throws. */
  reapChild(pid: number): [number, number] | null;
  spawnConstants: { STDIO_NULL: number; STDIO_PIPE: number };
  /** Fills out[0..2] with the peer's pid, uid and gid. */
  peerCredentials(fd: number, out: Float64Array): void;
  /** pidfd_open(pid, 0): the new fd. Throws. */
  pidfdOpen(pid: number): number;
  /** 1 once the pidfd's process has exited, 0 before, or -errno. */
  processExited(pidfd: number): number;
  /** 1: the socket's peer is that pid, uid and still-running process; 0: it is not; -1: no peer yet. */
  peerIsProcess(fd: number, pidfd: number, pid: number, uid: number): number;
  decodeSockaddr(image: Uint8Array): NativeDecodedAddress;
  constants: NativeConstants;
}

/** build/ sits at the package root, one level above both src/ and dist/. */
export function packageRoot(): string {
  return dirname(dirname(fileURLToPath(import.meta.url)));
}

export function candidatePaths(root: string = packageRoot()): string[] {
  return [
    join(root, 'build', 'Release', 'fdpass.node'),
    join(root, 'build', 'Debug', 'fdpass.node'),
  ];
}

/** The tag-matching helpers node-gyp-build exports (it ships no types). */
interface PrebuildTags {
  file: string;
}
interface PrebuildTuple {
  name: string;
}
interface NodeGypBuild {
  parseTuple(name: string): PrebuildTuple | undefined;
  matchTuple(platform: string, arch: string): (tuple: PrebuildTuple | undefined) => boolean;
  compareTuples(a: PrebuildTuple, b: PrebuildTuple): number;
  parseTags(file: string): PrebuildTags | undefined;
  matchTags(runtime: string, abi: string): (tags: PrebuildTags | undefined) => boolean;
  compareTags(runtime: string): (a: PrebuildTags, b: PrebuildTags) => number;
}

function readdirOr(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The file name a prebuild for this platform is published under. */
function publishedPrebuild(prebuilds: string): string {
  const libc =
    process.platform !== 'linux' ? '' : existsSync('/etc/alpine-release') ? '.musl' : '.glibc';
  return join(prebuilds, `${process.platform}-${process.arch}`, `@handoff+fdpass${libc}.node`);
}

/**
 * The prebuild for this runtime, as node-gyp-build would choose it from
 * prebuilds/<platform>-<arch>/. When none matches, the file a matching
 * prebuild would be, so the load error names where it looked; the same when
 * node-gyp-build cannot be loaded (an application bundle that left it out).
 */
export function prebuildPaths(root: string = packageRoot()): string[] {
  const prebuilds = join(root, 'prebuilds');
  let gypBuild: NodeGypBuild;
  try {
    gypBuild = createRequire(import.meta.url)('node-gyp-build') as NodeGypBuild;
  } catch {
    return [publishedPrebuild(prebuilds)];
  }
  const tuple = readdirOr(prebuilds)
    .map((name) => gypBuild.parseTuple(name))
    .filter(gypBuild.matchTuple(process.platform, process.arch))
    .sort((a, b) => gypBuild.compareTuples(a as PrebuildTuple, b as PrebuildTuple))[0];
  if (tuple !== undefined) {
    const dir = join(prebuilds, tuple.name);
    const winner = readdirOr(dir)
      .map((file) => gypBuild.parseTags(file))
      .filter(gypBuild.matchTags('node', process.versions.modules))
      .sort((a, b) => gypBuild.compareTags('node')(a as PrebuildTags, b as PrebuildTags))[0];
    if (winner !== undefined) return [join(dir, winner.file)];
  }
  return [publishedPrebuild(prebuilds)];
}

let cached: NativeBinding | undefined;

/**
 * Loads the addon once per JS realm (each worker loads its own instance; the
 * addon keeps no process-wide state): a local build, else the matching
 * prebuild; nothing is ever compiled here. Throws FdPassError ERR_NATIVE_LOAD
 * listing every path it tried and why each failed.
 */
export function loadNative(): NativeBinding {
  // The prebuild is looked for only when no local build loads.
  if (cached === undefined) cached = loadFromPaths(candidatePaths(), () => prebuildPaths());
  return cached;
}

/**
 * Loads the first of `paths`, then of `thenPaths()`, that works; the error
 * lists all of them.
 */
export function loadFromPaths(
  paths: readonly string[],
  thenPaths: () => readonly string[] = () => [],
): NativeBinding {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  function* all(): Generator<string> {
    yield* paths;
    yield* thenPaths();
  }
  for (const path of all()) {
    let binding: NativeBinding;
    try {
      binding = require(path) as NativeBinding;
    } catch (err) {
      const reason = (err as { code?: string; message?: string }).code ?? 'error';
      failures.push(
        `  ${path}: ${reason === 'MODULE_NOT_FOUND' ? 'not found' : (err as Error).message}`,
      );
      continue;
    }
    registerErrnoNames(binding.constants.ERRNO_NAMES);
    // The addon's exports object is in dictionary mode (its properties are
    // added one by one at load), which makes every native.fn lookup on the
    // hot paths a slow generic load. A copy is a plain object with fast
    // properties.
    return { ...binding };
  }
  throw new FdPassError(
    'ERR_NATIVE_LOAD',
    `@handoff/fdpass: could not load the native addon. Prebuilds exist for linux-x64 and ` +
      `linux-arm64 (glibc); elsewhere it is built from source by the package's install script ` +
      `(needs g++, make, python3): run "npm rebuild @handoff/fdpass". Tried:\n${failures.join('\n')}`,
  );
}

// Loaded at import, not at first use: the addon opens the environment's
// shared epoll set (native/nested_poll.h) as it loads, and that fd belongs
// in the process's baseline (tests count /proc/self/fd before their first
// socket). A failure here is thrown again, typed, at first use.
try {
  loadNative();
} catch {
  // reported by the first loadNative() that needs the addon
}
