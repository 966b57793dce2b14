// One socket while connectService uses it (see Conversation): connecting,
// cutting the broker's replies into frames, and handing the socket back to
// the caller with every unread byte, or disposing of it.
import type { Socket } from 'node:net';
import {
  decodeFrameHeader,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  tryDecodeFramed,
} from '@handoff/protocol';
import type { Cancellable } from './cancellation.js';
import { ConnectServiceError } from './connect-service-error.js';
import { connectUnix } from './unix-connect.js';

const EMPTY = Buffer.alloc(0);

/**
 * One socket while connectService uses it. It listens for every event the
 * socket can emit from the moment it is created, so a fault (refused,
 * reset, EOF, abort) is recorded and surfaces at whichever await is
 * pending, never as an 'error' with no listener. Frames already received
 * are read before a fault is reported: a reply followed by a reset is
 * still a reply. It owns the socket until handBack() or dispose().
 */
export class Conversation {
  readonly socket: Socket;
  /** Bytes received and not yet cut into frames. */
  private chunks: Buffer[] = [];
  private size = 0;
  /** Frames that arrived before the relay, for the caller. */
  private kept: Buffer[] = [];
  /** Where the last frame taken lies: the buffer it was cut from, and its end in it. */
  private takenFrom: Buffer = EMPTY;
  private takenEnd = 0;
  private waiter: (() => void) | null = null;
  /** connected()'s 'connect' listener, made only on the reconnect route. */
  private onConnect: (() => void) | null = null;
  /** A next() in progress: how to settle its promise (see settleNext). */
  private nextSettle: ((frame: Frame) => void) | null = null;
  private nextFail: ((error: unknown) => void) | null = null;
  private failure: Error | null = null;
  private reading = false;

  /**
   * `readNow`: listen for data from the start (the broker's reply is
   * awaited anyway), so that reading begins as the connect completes, not
   * a turn later when next() is first called.
   */
  constructor(
    private readonly path: string,
    private readonly signal: Cancellable,
    readNow = false,
  ) {
    this.socket = connectUnix(path);
    // No 'connect' listener unless connected() is called: a failed connect
    // is told apart by its error's syscall, and on the handoff route the
    // broker's reply is proof enough of the connection.
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
    if (readNow) this.startReading();
    signal.addEventListener('abort', this.onAbort, { once: true });
    if (signal.aborted) this.onAbort();
  }

  private startReading(): void {
    this.reading = true;
    this.socket.on('data', this.onData);
  }

  /** Tells whoever waits that something happened (a method: no closure per connection). */
  private wake(): void {
    if (this.nextSettle !== null) this.settleNext();
    else this.waiter?.();
  }
  private readonly onData = (chunk: Buffer) => {
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake();
  };
  private readonly onError = (error: NodeJS.ErrnoException) => {
    const errno = error.code;
    // Node names the failed call: 'connect' for the connect itself (ENOENT,
    // ECONNREFUSED, EAGAIN), 'read' or 'write' once connected.
    this.failure ??=
      error.syscall === 'connect'
        ? new ConnectServiceError(
            'CONNECT',
            `cannot connect to ${this.path}: ${errno ?? error.message}`,
            undefined,
            { errno, cause: error },
          )
        : new ConnectServiceError(
            'CLOSED',
            `the connection to ${this.path} failed during connectService (${errno ?? error.message})`,
            undefined,
            { errno, cause: error },
          );
    this.wake();
  };
  private readonly onClose = () => {
    this.failure ??= new ConnectServiceError(
      'CLOSED',
      `the connection to ${this.path} closed during connectService`,
    );
    this.wake();
  };
  private readonly onAbort = () => {
    this.failure ??= this.signal.reason as Error;
    this.socket.destroy();
    this.wake();
  };

  private wait(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiter = () => {
        this.waiter = null;
        resolve();
      };
    });
  }

  async connected(): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      // A failed connect destroys the socket at once, before its 'error'
      // is emitted: not connecting and not destroyed means connected.
      if (!this.socket.connecting && !this.socket.destroyed) return;
      if (this.onConnect === null) {
        this.onConnect = () => this.wake();
        this.socket.on('connect', this.onConnect);
      }
      await this.wait();
    }
  }

  /**
   * The next whole frame. Not an async function: the broker's reply usually
   * comes in one read after the call, and the data handler settles this
   * promise itself (settleNext), with no generator and one microtask turn
   * fewer than an async loop around wait().
   */
  next(): Promise<Frame> {
    if (!this.reading) this.startReading();
    return new Promise<Frame>((resolve, reject) => {
      this.nextSettle = resolve;
      this.nextFail = reject;
      this.settleNext();
    });
  }

  /**
   * Settles next()'s promise if a whole frame or a fault is in (frames
   * first: a reply followed by a reset is still a reply); otherwise leaves
   * it for the next wake.
   */
  private settleNext(): void {
    let frame: Frame | null;
    try {
      frame = this.take();
    } catch (error) {
      this.endNext()(error);
      return;
    }
    if (frame !== null) {
      const settle = this.nextSettle!;
      this.endNext();
      settle(frame);
    } else if (this.failure) this.endNext()(this.failure);
  }

  /** Forgets next()'s promise; returns its reject. */
  private endNext(): (error: unknown) => void {
    const fail = this.nextFail!;
    this.nextSettle = null;
    this.nextFail = null;
    return fail;
  }

  /**
   * The handoff's relay for `connectionId`, if it has arrived: the frames
   * before it are kept for the caller. It usually came in the same read as
   * the HelloReply (the daemon writes both at once), so the caller asks
   * here first and awaits untilRelay() only when it has not.
   */
  relayNow(connectionId: bigint): Frame | null {
    for (let frame = this.take(); frame !== null; frame = this.take()) {
      if (
        frame.kind === FrameKind.EVENT &&
        frame.payloadProtocol === HANDOFF_PAYLOAD_PROTOCOL &&
        frame.requestId === connectionId
      )
        return frame;
      // Its bytes as they came, header included: the caller reads them first.
      this.kept.push(this.takenFrom.subarray(0, this.takenEnd));
    }
    return null;
  }

  async untilRelay(connectionId: bigint): Promise<Frame> {
    for (;;) {
      const relay = this.relayNow(connectionId);
      if (relay) return relay;
      if (this.failure) throw this.failure;
      await this.wait();
    }
  }

  /**
   * Cuts the next whole frame off the received bytes. The header is checked
   * as soon as it is in (a bad version byte or a length over the 16 MiB cap
   * fails at once), and pieces are joined once, when the frame is complete.
   * The usual reply is in one piece, decoded where it lies. The frame's
   * own bytes are `takenFrom` up to `takenEnd`, until the next take: cut
   * out only for a frame that is kept.
   */
  private take(): Frame | null {
    if (this.size === 0) return null;
    try {
      let all = this.chunks[0]!;
      if (this.chunks.length > 1) {
        const head =
          all.length >= FRAME_HEADER_BYTES
            ? all
            : Buffer.concat(this.chunks, Math.min(this.size, FRAME_HEADER_BYTES));
        const header = decodeFrameHeader(head);
        if (!header || this.size < FRAME_HEADER_BYTES + header.bodyLength) return null;
        all = Buffer.concat(this.chunks, this.size);
        this.chunks = [all];
      }
      const decoded = tryDecodeFramed(all);
      if (!decoded) return null;
      const end = decoded.consumed;
      if (end === all.length) {
        this.chunks = [];
        this.size = 0;
      } else {
        const rest = all.subarray(end);
        this.chunks = [rest];
        this.size = rest.length;
      }
      this.takenFrom = all;
      this.takenEnd = end;
      return decoded.frame;
    } catch (error) {
      throw new ConnectServiceError(
        'PROTOCOL',
        `bad frame from ${this.path}: ${(error as Error).message}`,
        undefined,
        { cause: error },
      );
    }
  }

  /**
   * Gives the socket to the caller: no listener of ours is left on it (the
   * caller's 'error' listener must be the one to hear its faults), and
   * every byte not consumed here is put back, in order, for the caller to
   * read first. Errors are emitted from later ticks, after the caller's
   * await has resumed, so none can fire between this and the caller's
   * listener.
   */
  handBack(): Socket {
    if (this.failure) {
      const failure = this.failure;
      if (failure instanceof ConnectServiceError && failure.code === 'CLOSED')
        failure.retryable = true;
      this.dispose();
      throw failure;
    }
    this.detach();
    if (this.reading) {
      this.socket.off('data', this.onData);
      this.socket.pause();
      const parts = this.kept.length === 0 ? this.chunks : [...this.kept, ...this.chunks];
      if (parts.length > 0)
        this.socket.unshift(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
      // pause() stopped the reads; back to the state of a socket nobody has
      // read yet, so the caller's first 'data' listener starts the flow, as
      // on any fresh net.Socket (an explicitly paused stream ignores it).
      // Node's Readable has had this setter since v9; @types/node types it read-only.
      (this.socket as { readableFlowing: boolean | null }).readableFlowing = null;
    }
    this.socket.off('error', this.onError);
    return this.socket;
  }

  /**
   * Closes the socket. The 'error' listener stays: an error already queued
   * for a socket nobody holds any more has nowhere else to go.
   */
  dispose(): void {
    this.detach();
    this.socket.off('data', this.onData);
    this.socket.destroy();
  }

  private detach(): void {
    if (this.onConnect !== null) this.socket.off('connect', this.onConnect);
    this.socket.off('close', this.onClose);
    this.signal.removeEventListener('abort', this.onAbort);
    this.waiter = null;
    this.nextSettle = null;
    this.nextFail = null;
  }
}
