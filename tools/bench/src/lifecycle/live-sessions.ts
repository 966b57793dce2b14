// Long-lived client sessions on the line wire: each one connects through
// the broker once and then sends one GET at a time, recording each
// request's latency. A session the daemon closes while it is idle is
// re-opened (counted as `reopened`); a request whose connection fails
// before its answer is a failed request.
import type { Socket } from 'node:net';
import { connectService } from '@handoff/broker/client';
import { describe } from './connect-loops.ts';
import { GET_LINE, goodAnswer, LineReadError, readLine } from './line-wire.ts';

export interface RequestSample {
  at: number;
  ms: number;
  error: string | null;
}

export class LiveSessions {
  readonly requests: RequestSample[] = [];
  /** Sessions found closed between two requests, and opened again. */
  reopened = 0;
  /** Session (re)opens that failed. */
  openFailures: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly brokerPath: string,
    count: number,
    private readonly pauseMs: number,
  ) {
    this.loops = Array.from({ length: count }, () => this.session());
  }

  private async open(): Promise<Socket | null> {
    try {
      const { socket } = await connectService('demo-kv', {
        version: '1.0.0',
        brokerPath: this.brokerPath,
        timeoutMs: 10_000,
      });
      return socket;
    } catch (error) {
      this.openFailures.push(describe(error));
      return null;
    }
  }

  private async session(): Promise<void> {
    let socket: Socket | null = null;
    let ended = false;
    const carry = { rest: '' };
    while (this.running) {
      if (socket === null || ended) {
        if (socket !== null) this.reopened++;
        socket?.destroy();
        socket = await this.open();
        if (socket === null) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        ended = false;
        carry.rest = '';
        const current = socket;
        current.once('end', () => {
          if (socket === current) ended = true;
        });
        current.once('close', () => {
          if (socket === current) ended = true;
        });
        current.on('error', () => {});
      }
      const at = performance.now();
      socket.write(GET_LINE);
      try {
        const answer = await readLine(socket, 10_000, carry);
        this.requests.push({
          at,
          ms: performance.now() - at,
          error: goodAnswer(answer) ? null : `ANSWER:${answer.slice(0, 40)}`,
        });
      } catch (error) {
        this.requests.push({
          at,
          ms: performance.now() - at,
          error:
            error instanceof LineReadError
              ? `REQUEST:${error.code}${error.errno ? `:${error.errno}` : ''}`
              : describe(error),
        });
        ended = true;
      }
      socket.pause();
      if (this.pauseMs > 0) await new Promise((r) => setTimeout(r, this.pauseMs));
    }
    socket?.destroy();
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}
