// Connecting a net.Socket to a Unix socket path, with an options object
// that has no prototype. Node's Socket constructor (and Duplex's, under it)
// reads a dozen options nobody sets here (objectMode, readable, read,
// writev, signal, …). On an object that inherits from Object.prototype,
// in our client processes each of those lookups took V8's slow path on
// every connect: a bare net.connect client spent about 136,000
// instructions per connect with `{ path }` and about 68,000 with
// `{ __proto__: null, path }` (callgrind, tools/bench/RESULTS.md,
// 2026-12-07). With no prototype there is no chain to check, and the
// lookups stay cached.
import { connect, type NetConnectOpts, type Socket } from 'node:net';

/** `net.connect({ path })`, the cheap way (see above). */
export function connectUnix(path: string): Socket {
  return connect({ __proto__: null, path } as NetConnectOpts);
}
