// The master's books on one worker, as the scheduler keeps them: the
// connections it was assigned, sent and not yet adopted, its load and state
// (WorkerLink), and the scheduler's counters. Data only; the decisions are
// scheduler.ts, scheduler-send.ts and scheduler-receive.ts.
import type { FdSocket } from '@handoff/fdpass';
import type { DispatchLogger } from './log.js';

export interface SchedulerLimits {
  /** Connections sent to a worker (or about to be) and not yet adopted by it. */
  maxQueuePerWorker: number;
  /** Connections a worker holds at once: queued + adopted and still open. */
  maxConnectionsPerWorker: number;
  /** After this many connections a worker is retired (stop sending, drain, replace). */
  maxRequestsPerWorker?: number | undefined;
  /** Told to workers with STOP: how long they may take to drain. */
  shutdownDeadlineMs: number;
  /** Sends of one connection before it is given up and closed (default 3). */
  maxAttempts?: number;
}

export interface Conn {
  fd: number;
  id: number;
  listener: number;
  acceptedAt: number;
  attempts: number;
}

export type LinkState = 'starting' | 'ready' | 'retiring' | 'lost';

/** The master's view of one worker, through its channel. */
export class WorkerLink {
  state: LinkState = 'starting';
  /** Reported by the worker itself in READY. */
  reportedPid = 0;
  /** Assigned, not yet sent. */
  pending: Conn[] = [];
  /** Sent, oldest first, awaiting ADOPTED or DROPPED. */
  inFlight: Conn[][] = [];
  /** pending + in flight. */
  queued = 0;
  /** queued + adopted and still open. */
  open = 0;
  /** Connections assigned over its life (rotation counts these). */
  dispatched = 0;
  /** The channel's write queue is over its high-water mark: wait for 'drain'. */
  blocked = false;
  /** The kernel refused a message to it: skip it until the next retry pass. */
  refusing = false;
  stopRequested = false;
  stopSent = false;
  /** Why the channel was lost, when it was an error. */
  lostError: Error | null = null;
  dirty = false;

  constructor(
    readonly slot: number,
    readonly generation: number,
    readonly pid: number,
    readonly channel: FdSocket,
  ) {}

  get label(): string {
    return `worker ${this.slot} (pid ${this.pid})`;
  }
}

export interface SchedulerCounters {
  accepted: number;
  /** Connections adopted by a worker. */
  dispatched: number;
  completed: number;
  redispatched: number;
  /** DISPATCH messages sent (each carries up to 253 connections). */
  messages: number;
  adoptSumMs: number;
  adoptCount: number;
  errors: {
    /** Connections in a sendmsg the kernel refused (the message, not the channel). */
    send: number;
    /** Connections in dispatches that never reached a worker whole. */
    dropped: number;
    /** Connections a worker received but could not adopt. */
    adopt: number;
    /** Connections the master closed after giving up on them. */
    closed: number;
    /** Adopted connections still open when their worker died. */
    abandoned: number;
    /** Malformed or impossible messages from a worker. */
    protocol: number;
  };
}

/** What the scheduler's sending and receiving halves ask of it. */
export interface SchedulerHooks {
  readonly counters: SchedulerCounters;
  readonly log: DispatchLogger;
  /** Back to the front of the master's line, in order; those out of attempts are closed. */
  takeBack(conns: Conn[], reason: string): void;
  /** Clears every link's `refusing` after a short delay, then places and sends again. */
  scheduleRetry(): void;
}
