// Write batching shared by the daemon server and the frame client: writes
// made in one tick are corked into one writev (a burst of small frames
// costs one syscall, not one each), but flushed early once 8 KiB wait, so
// the peer can start on a long batch while the rest is still being
// produced — pipelining, not lockstep.
import type { Socket } from 'node:net';

const FLUSH_BYTES = 8 * 1024;

export class BatchedWriter {
  #corked = false;
  #batched = 0;

  readonly #socket: Socket;
  /** Called after each flush (e.g. to re-check backpressure). */
  readonly #onFlush: () => void;

  constructor(socket: Socket, onFlush: () => void = () => {}) {
    this.#socket = socket;
    this.#onFlush = onFlush;
  }

  write(bytes: Uint8Array): void {
    if (this.#socket.destroyed) return;
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(this.flush);
    }
    this.#socket.write(bytes);
    this.#batched += bytes.length;
    if (this.#batched >= FLUSH_BYTES) this.flush();
  }

  readonly flush = (): void => {
    this.#batched = 0;
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
    this.#onFlush();
  };
}
