// Reading answers off a socket the soak drives by hand: whole frames (the
// 0xF0D0 wire) or whole lines (the line wire), one await at a time, with an
// slow mode — hold off reading, then take one chunk at a time with a pause
// between — for the slow-reader traffic. Holds at most what the
// peer sent and the caller has not taken yet.
import type { Socket } from 'node:net';
import { type Frame, FrameDecoder } from '@handoff/protocol';
import { ConnectionLost } from './tally.js';

export interface ReaderOptions {
  /** After each chunk, stop reading for this long. */
  pauseMs?: number;
}

abstract class SocketReader<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private held = false;

  constructor(
    protected readonly socket: Socket,
    private readonly options: ReaderOptions = {},
  ) {
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () =>
      this.fail(new ConnectionLost('the connection closed before every answer came')),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const item of this.parse(chunk)) this.items.push(item);
      } catch (error) {
        this.fail(error as Error);
        this.socket.destroy();
      }
      if (this.options.pauseMs) {
        this.socket.pause();
        setTimeout(() => {
          if (!this.held) this.socket.resume();
        }, this.options.pauseMs).unref();
      }
      this.wake();
    });
    socket.resume();
  }

  /** Stops reading until release(): the kernel buffers fill, then the peer must hold back. */
  hold(): void {
    this.held = true;
    this.socket.pause();
  }

  release(): void {
    this.held = false;
    this.socket.resume();
  }

  protected abstract parse(chunk: Buffer): T[];

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  async next(): Promise<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) return item;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }
}

export class FrameReader extends SocketReader<Frame> {
  private readonly decoder = new FrameDecoder();
  protected parse(chunk: Buffer): Frame[] {
    return this.decoder.push(chunk);
  }
}

export class LineReader extends SocketReader<Buffer> {
  private partial: Buffer[] = [];
  protected parse(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      lines.push(Buffer.concat([...this.partial, chunk.subarray(start, nl)]));
      this.partial = [];
      start = nl + 1;
    }
    if (start < chunk.length) this.partial.push(chunk.subarray(start));
    return lines;
  }
}
