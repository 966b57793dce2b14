// Plumbing for the serveDaemon process tests: a client that writes raw
// frames and records every frame, the end and any error it sees (no
// FrameClient logic between the test and the wire), and the fault daemon
// fixture started as a child process with its stdout lines collected.
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { encodeFramed, type Frame, FrameDecoder, requestFrame } from '@handoff/protocol';
import { type Fixture, startFixture } from './fixtures/run.js';

export const P = 0xf001;

export class FramedPeer {
  readonly frames: Frame[] = [];
  ended = false;
  error: NodeJS.ErrnoException | null = null;
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder({ copyPayloads: true });

  private constructor(readonly socket: Socket) {
    this.closed = once(socket, 'close').then(() => {});
    socket.on('error', (error) => {
      this.error = error;
    });
    socket.on('end', () => {
      this.ended = true;
    });
  }

  /** Connected and reading (or, with `reading: false`, not reading until read() is called). */
  static async connect(path: string, reading = true): Promise<FramedPeer> {
    const socket = connect(path);
    await once(socket, 'connect');
    const peer = new FramedPeer(socket);
    if (reading) peer.read();
    return peer;
  }

  read(): void {
    this.socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.frames.push(frame);
    });
  }

  static frame(requestId: number, payload: Uint8Array | string): Uint8Array {
    return encodeFramed(
      requestFrame({
        payloadProtocol: P,
        payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
        requestId: BigInt(requestId),
      }),
    );
  }

  send(...frames: Uint8Array[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** The frames received for `requestId`. */
  framesFor(requestId: number): Frame[] {
    return this.frames.filter((f) => f.requestId === BigInt(requestId));
  }

  /** Sends one request and waits for its first frame; rejects if the connection closes first. */
  async request(requestId: number, payload: string): Promise<string> {
    this.send(FramedPeer.frame(requestId, payload));
    const closed = this.closed.then(() => {
      throw new Error(`connection closed before request ${requestId} was answered`);
    });
    closed.catch(() => {});
    for (;;) {
      const got = this.framesFor(requestId);
      if (got.length > 0) return Buffer.from(got[0]!.payload).toString();
      await Promise.race([once(this.socket, 'data'), closed]);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface DaemonChild extends Fixture {
  /** stdout lines after "ready". */
  readonly lines: string[];
  alive(): boolean;
  /** Current and peak resident set, in bytes, from /proc. */
  memory(): { rss: number; hwm: number };
  /** Resets the peak resident set to the current one. */
  resetPeak(): void;
}

export async function startDaemonChild(
  endpoint: string,
  args: string[] = [],
): Promise<DaemonChild> {
  const fixture = await startFixture('fault-daemon.ts', [endpoint, ...args]);
  const lines: string[] = [];
  let partial = '';
  fixture.child.stdout!.on('data', (d: Buffer) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts.filter((l) => !l.startsWith('ready')));
  });
  const status = (field: string) => {
    const m = readFileSync(`/proc/${fixture.pid}/status`, 'utf8').match(
      new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'),
    );
    return Number(m![1]) * 1024;
  };
  return {
    ...fixture,
    lines,
    alive: () => fixture.child.exitCode === null && fixture.child.signalCode === null,
    memory: () => ({ rss: status('VmRSS'), hwm: status('VmHWM') }),
    // "5" resets the peak RSS (VmHWM) to the current RSS (proc(5)).
    resetPeak: () => writeFileSync(`/proc/${fixture.pid}/clear_refs`, '5'),
  };
}
