// What the Hello router needs from the broker around it: routing decisions,
// backends, admin answers, deadlines and where to report. broker-server.ts
// builds one per broker; the router and the handoff code only read it.
import type { AdminReply, AdminRequest, ErrorCode } from '@handoff/protocol';
import type { Backend } from './backend-registry.js';
import type { ServiceDefinition } from './config/definition.js';
import type { HandoffTokenPool } from './handoff/token-pool.js';

export interface RouteDecision {
  ok: true;
  definition: ServiceDefinition;
}
export interface RouteRefusal {
  ok: false;
  code: ErrorCode;
  reason: string;
  retryAfterMs?: number;
}

export type HelloOutcome =
  | 'handoff'
  | 'reconnect'
  | 'refused'
  | 'rejected'
  | 'rate_limited'
  | 'spawn_failed'
  | 'fd_pressure';

/** What the router needs from the broker around it. */
export interface RouterContext {
  select(name: string, wantedVersion: string): RouteDecision | RouteRefusal;
  acquire(definition: ServiceDefinition): Promise<Backend>;
  admin(request: AdminRequest): Promise<AdminReply>;
  nextConnectionId(): bigint;
  /** The broker's own pool of handoff tokens. */
  tokens: HandoffTokenPool;
  helloDeadlineMs: number;
  handoffDeadlineMs: number;
  /** The retry hint sent with Refused{FD_PRESSURE}. */
  fdPressureRetryMs: number;
  daemonMinProtocol: number;
  daemonMaxProtocol: number;
  /** Observations for metrics and logs. */
  observeHello(service: string, outcome: HelloOutcome, seconds: number): void;
  observeHandoff(outcome: 'accepted' | 'fallback' | 'reconnect', seconds: number): void;
  log(level: 'info' | 'warn' | 'debug', fields: Record<string, unknown>, message: string): void;
}

/** Seconds since `started` (a process.hrtime.bigint()), as the observe hooks take them. */
export function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
