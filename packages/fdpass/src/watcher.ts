// The readiness watch under every fdpass fd that waits for something (a
// socket, a listener, a pidfd): the addon's watch() handle and the callback
// it calls, kept together. The addon holds the callback only weakly, since a
// strong hold would be a GC root and the callback closes over its owner,
// which holds this watcher: nothing would ever be collected. So this object
// keeps it, an ordinary cycle the GC can collect once the owner is dropped
// (the handle's finalizer then closes the fd); while watching, the addon
// holds it strongly, so a socket waiting for data is never collected.
import type { NativeBinding, WatcherCallback, WatcherHandle } from './native-loader.js';

export class Watcher {
  readonly #native: NativeBinding;
  readonly #handle: WatcherHandle;
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: never read; holding the callback is its whole job (see above)
  readonly #callback: WatcherCallback;

  /** Takes `fd` (the watcher closes it from then on); on a throw the caller still owns it. */
  constructor(native: NativeBinding, fd: number, callback: WatcherCallback, fresh = false) {
    this.#handle = native.watch(fd, callback, fresh);
    this.#native = native;
    this.#callback = callback;
  }

  /** Watches for `mask` (UV_READABLE | UV_WRITABLE; 0 stops): 0 or a negative libuv error. */
  setEvents(mask: number): number {
    return this.#native.watchEvents(this.#handle, mask);
  }

  setRef(ref: boolean): void {
    this.#native.watchRef(this.#handle, ref);
  }

  /** Stops watching and closes the fd. Idempotent. */
  close(): void {
    this.#native.watchClose(this.#handle);
  }
}
