// Counting outcomes: requests by traffic kind, failures (with the first few
// kept verbatim for the report), and expected faults — connection-level
// errors of a task that overlapped a daemon SIGKILL. Everything here is
// bounded: counters, a capped list of examples, a short ring of kill times.

export const TRAFFIC_KINDS = [
  'handoff',
  'handoff_first_request',
  'line',
  'probe',
  'admin',
  'slow_reader',
  'abrupt',
] as const;
export type TrafficKind = (typeof TRAFFIC_KINDS)[number];

/** A wrong, missing or extra answer: never the consequence of a kill. */
export class AnswerMismatch extends Error {
  override readonly name = 'AnswerMismatch';
  readonly code = 'ANSWER_MISMATCH';
}

/** The daemon buffered the answers of a stalled reader instead of holding them back. */
export class OutboundNotBounded extends Error {
  override readonly name = 'OutboundNotBounded';
  readonly code = 'OUTBOUND_NOT_BOUNDED';
}

/** A connection the soak reads itself ended before the answers it waited for. */
export class ConnectionLost extends Error {
  override readonly name = 'ConnectionLost';
  readonly code = 'CLOSED';
}

/** A task went past its deadline: a hang, whatever the cause. */
export class TaskTimeout extends Error {
  override readonly name = 'TaskTimeout';
  readonly code = 'TASK_TIMEOUT';
}

/**
 * Codes that mean "the peer went away": FrameClientError / ConnectServiceError
 * CLOSED and CONNECT, ProbeError CONNECT and CLOSED, the errnos of a socket
 * whose peer died, and ProcInfoError NO_SUCH_PROCESS (the cause of a
 * ProbeError START_TIME when the daemon died between answering and the
 * prober's look at /proc). Only these can be excused by a kill.
 */
const CONNECTION_CODES = new Set([
  'CLOSED',
  'CONNECT',
  'NO_SUCH_PROCESS',
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ENOENT',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
]);

/** A task is excused by a kill that happened while it ran or this shortly before it began (the broker may not have seen the death yet). */
const KILL_GRACE_MS = 2000;
const KILLS_REMEMBERED = 16;
const EXAMPLES_KEPT = 20;

export interface FailureExample {
  kind: TrafficKind;
  code: string;
  message: string;
  at_s: number;
}

export class Tally {
  readonly requests: Record<TrafficKind, number> = zeroes();
  readonly tasks: Record<TrafficKind, number> = zeroes();
  readonly failuresByKind: Record<TrafficKind, number> = zeroes();
  readonly expectedByKind: Record<TrafficKind, number> = zeroes();
  readonly examples: FailureExample[] = [];
  /** Distinct failure messages (code + kind), counted; capped so a flood cannot grow it. */
  private readonly distinct = new Map<string, number>();
  private readonly killTimes: number[] = [];
  kills = 0;

  constructor(private readonly origin: number) {}

  get failures(): number {
    return sum(this.failuresByKind);
  }
  get expectedFaults(): number {
    return sum(this.expectedByKind);
  }
  get totalRequests(): number {
    return sum(this.requests);
  }

  recordKill(at: number): void {
    this.kills++;
    this.killTimes.push(at);
    if (this.killTimes.length > KILLS_REMEMBERED) this.killTimes.shift();
  }

  private killOverlapped(startedAt: number, endedAt: number): boolean {
    return this.killTimes.some((k) => k >= startedAt - KILL_GRACE_MS && k <= endedAt);
  }

  ok(kind: TrafficKind, requests: number): void {
    this.tasks[kind]++;
    this.requests[kind] += requests;
  }

  /** Files an error of a task that began at `startedAt`: an expected fault or a failure. */
  error(
    kind: TrafficKind,
    error: unknown,
    requests: number,
    startedAt: number,
    endedAt: number,
  ): 'expected' | 'failure' {
    this.tasks[kind]++;
    this.requests[kind] += requests;
    const code = errorCode(error);
    if (peerWentAway(error) && this.killOverlapped(startedAt, endedAt)) {
      this.expectedByKind[kind]++;
      return 'expected';
    }
    this.failuresByKind[kind]++;
    const message = error instanceof Error ? error.message : String(error);
    if (this.examples.length < EXAMPLES_KEPT) {
      this.examples.push({
        kind,
        code,
        message: message.slice(0, 500),
        at_s: round1((endedAt - this.origin) / 1000),
      });
    }
    const key = `${kind} ${code}`;
    if (this.distinct.has(key) || this.distinct.size < 50)
      this.distinct.set(key, (this.distinct.get(key) ?? 0) + 1);
    return 'failure';
  }

  failureCounts(): Record<string, number> {
    return Object.fromEntries(this.distinct);
  }
}

/** The error, or one of its causes, says the peer went away. */
function peerWentAway(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as Error).cause, depth++) {
    if (CONNECTION_CODES.has(errorCode(e))) return true;
  }
  return false;
}

export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : ((error as Error | null)?.name ?? 'ERROR');
}

function zeroes(): Record<TrafficKind, number> {
  return Object.fromEntries(TRAFFIC_KINDS.map((k) => [k, 0])) as Record<TrafficKind, number>;
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

export const round1 = (x: number) => Math.round(x * 10) / 10;
