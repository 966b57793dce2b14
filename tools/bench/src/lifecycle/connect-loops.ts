// Client loops that connect to the broker continuously: each iteration is
// a fresh connection, a Hello for demo-kv with one line-wire GET riding on
// it (initialData), and the daemon's answer; then the connection closes.
// Every attempt is recorded with its time, so a case can split them into
// windows (steady, during an upgrade, …).
import type { Socket } from 'node:net';
import { ConnectServiceError, connectService } from '@handoff/broker/client';
import { ErrorCode } from '@handoff/protocol';
import { GET_LINE, goodAnswer, LineReadError, readLine } from './line-wire.ts';

export interface Attempt {
  /** performance.now() when the attempt began. */
  at: number;
  /** ms from the connect to connectService resolving (Hello answered); NaN if it failed. */
  connectMs: number;
  /** ms from the connect to the daemon's answer; NaN if it failed. */
  totalMs: number;
  /** null when it worked; else what failed (`REFUSED:SHUTTING_DOWN`, `CONNECT:ENOENT`, `ANSWER:CLOSED`, …). */
  error: string | null;
}

const request = Buffer.from(GET_LINE);

export async function oneConnect(brokerPath: string, timeoutMs = 10_000): Promise<Attempt> {
  const at = performance.now();
  let socket: Socket | undefined;
  try {
    const connected = await connectService('demo-kv', {
      version: '1.0.0',
      brokerPath,
      timeoutMs,
      initialData: request,
    });
    socket = connected.socket;
    const connectMs = performance.now() - at;
    const line = await readLine(socket, timeoutMs, { rest: '' });
    const totalMs = performance.now() - at;
    if (!goodAnswer(line))
      return {
        at,
        connectMs: Number.NaN,
        totalMs: Number.NaN,
        error: `ANSWER:${line.slice(0, 40)}`,
      };
    return { at, connectMs, totalMs, error: null };
  } catch (error) {
    return { at, connectMs: Number.NaN, totalMs: Number.NaN, error: describe(error) };
  } finally {
    socket?.destroy();
  }
}

export function describe(error: unknown): string {
  if (error instanceof ConnectServiceError) {
    const detail = error.refusal
      ? (ErrorCode[error.refusal.code] ?? String(error.refusal.code))
      : (error.errno ?? '');
    return detail ? `${error.code}:${detail}` : error.code;
  }
  if (error instanceof LineReadError)
    return `ANSWER:${error.code}${error.errno ? `:${error.errno}` : ''}`;
  return `OTHER:${(error as Error).message}`;
}

/**
 * `count` loops of oneConnect until stop(), each pausing `pauseMs` after
 * every attempt (worked or not): a steady offered load of at most
 * count × 1000 / pauseMs connects per second. Without the pause the loops
 * would saturate this 2-core machine and every latency would be queueing.
 */
export class ConnectLoops {
  readonly attempts: Attempt[] = [];
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(brokerPath: string, count: number, pauseMs: number) {
    this.loops = Array.from({ length: count }, async (_, i) => {
      // Staggered starts, so that the loops do not move in lockstep.
      await new Promise((r) => setTimeout(r, (i * pauseMs) / count));
      while (this.running) {
        this.attempts.push(await oneConnect(brokerPath));
        if (this.running) await new Promise((r) => setTimeout(r, pauseMs));
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}
