// How the broker still counts sessions that skipped it (endpoint-cache.ts):
// the client tells it, off the hot path. Each cache-path session is one
// AdminRequest{verb CACHE_SESSION_VERB, service_name} on the broker socket;
// the ones noted within REPORT_DELAY_MS go pipelined in one write on one
// connection, one report in flight per broker. The broker counts each in
// endpoint_cache_sessions_total{service} (src/cache-sessions.ts). The timer
// is unref'd, and what is still pending when the event loop empties is sent
// from 'beforeExit'; only a process.exit() or a signal loses the last batch.
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminRequest,
  AdminVerb,
  encodeFramed,
  requestFrame,
} from '@handoff/protocol';
import { connectUnix } from './unix-connect.js';

/**
 * Ours, beside UPGRADE (1000) and RESTART (1001): "one session of this
 * service went straight to its daemon". A broker that does not know it
 * answers "unserved" and counts nothing; nothing else changes.
 */
export const CACHE_SESSION_VERB = AdminVerb.CACHE_SESSION;

const REPORT_DELAY_MS = 250;

/** A report connection idle this long is dropped (with its batch). */
const REPORT_TIMEOUT_MS = 2000;

/** At most this many sessions in one report; the rest wait for the next. */
const MAX_SESSIONS_PER_REPORT = 4096;

/** brokerPath → service → sessions not reported yet. */
const pending = new Map<string, Map<string, number>>();
const inFlight = new Map<string, Promise<void>>();
let timer: NodeJS.Timeout | null = null;
let hooked = false;

/** Counts one cache-path session for the broker at `brokerPath`; sent later. */
export function noteCacheSession(brokerPath: string, service: string): void {
  let services = pending.get(brokerPath);
  if (services === undefined) {
    services = new Map();
    pending.set(brokerPath, services);
  }
  services.set(service, (services.get(service) ?? 0) + 1);
  schedule();
}

function schedule(): void {
  if (!hooked) {
    hooked = true;
    process.on('beforeExit', flushCacheSessionReports);
  }
  if (timer !== null) return;
  timer = setTimeout(flushCacheSessionReports, REPORT_DELAY_MS);
  timer.unref();
}

/** Sends what is pending now (to each broker with no report in flight). */
export function flushCacheSessionReports(): void {
  if (timer !== null) {
    clearTimeout(timer);
    timer = null;
  }
  for (const [brokerPath, services] of pending) {
    if (inFlight.has(brokerPath)) continue;
    pending.delete(brokerPath);
    send(brokerPath, services);
  }
}

function send(brokerPath: string, services: Map<string, number>): void {
  const frames: Uint8Array[] = [];
  for (const [service, count] of services) {
    // One frame per session, all alike: we never match the answers, so
    // they share request id 1.
    const frame = encodeFramed(
      requestFrame({
        payloadProtocol: ADMIN_PAYLOAD_PROTOCOL,
        payload: AdminRequest.encode(
          AdminRequest.create({ verb: CACHE_SESSION_VERB, serviceName: service }),
        ),
        requestId: 1n,
      }),
    );
    const take = Math.min(count, MAX_SESSIONS_PER_REPORT - frames.length);
    for (let i = 0; i < take; i++) frames.push(frame);
    if (take < count) requeue(brokerPath, service, count - take);
  }
  const socket = connectUnix(brokerPath);
  socket.on('connect', () => socket.end(Buffer.concat(frames)));
  // The broker answers each request; the answers say nothing we need. A
  // broker that cannot be reached loses this batch: counting is best effort.
  socket.resume();
  socket.on('error', () => {});
  // A broker that takes the bytes and never lets go must not hold us up at exit.
  socket.setTimeout(REPORT_TIMEOUT_MS, () => socket.destroy());
  inFlight.set(
    brokerPath,
    new Promise((resolve) =>
      socket.on('close', () => {
        inFlight.delete(brokerPath);
        if (pending.has(brokerPath)) schedule();
        resolve();
      }),
    ),
  );
}

function requeue(brokerPath: string, service: string, count: number): void {
  let services = pending.get(brokerPath);
  if (services === undefined) {
    services = new Map();
    pending.set(brokerPath, services);
  }
  services.set(service, (services.get(service) ?? 0) + count);
}

/** Resolves once no report is pending or in flight (tests, benchmarks). */
export async function cacheSessionReportsSettled(): Promise<void> {
  while (pending.size > 0 || inFlight.size > 0) {
    flushCacheSessionReports();
    await Promise.all(inFlight.values());
  }
}
