// One sample of a running broker for `top`: the services it defines (CONFIG),
// its daemons (LIST_INSTANCES) with their RSS from /proc, and its metrics
// (METRICS, parsed). It owns asking and reading; what the numbers mean
// between two samples is model.ts's.
import { readFileSync } from 'node:fs';
import { type AdminReply, AdminVerb } from '@handoff/protocol';
import { adminRequest } from '../client/admin-client.js';
import { BrokerError } from '../errors.js';
import { type ParsedMetrics, parseOpenMetrics } from '../openmetrics-parse.js';

export type TopSampleErrorCode = 'ADMIN_REFUSED' | 'BAD_REPLY';

/** The broker answered, but not with what a sample needs. */
export class TopSampleError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:TopSampleError';
  override readonly name = 'TopSampleError';
  declare readonly code: TopSampleErrorCode;
}

export interface DaemonSample {
  service: string;
  version: string;
  pid: number | null;
  state: string;
  startedAtUnixMs: number;
  /** Resident set size from /proc/<pid>/status; null when unreadable. */
  rssBytes: number | null;
}

export interface TopSample {
  /** When it was taken, on a monotonic clock (ms): rates divide by differences of these. */
  atMs: number;
  /** When it was taken, wall clock (ms since the epoch): daemon uptimes count from it. */
  wallMs: number;
  /** Names of the services the broker defines. */
  services: string[];
  daemons: DaemonSample[];
  metrics: ParsedMetrics;
}

export interface SampleOptions {
  timeoutMs?: number;
  /** Abandons the requests in flight (the view was closed). */
  signal?: AbortSignal;
  /** Where /proc is (tests point it elsewhere). */
  procRoot?: string;
  monotonicMs?: () => number;
  wallMs?: () => number;
}

/** Asks the broker at `socketPath` for one sample; rejects with AdminClientError or TopSampleError. */
export async function takeSample(
  socketPath: string,
  options: SampleOptions = {},
): Promise<TopSample> {
  const ask = {
    timeoutMs: options.timeoutMs ?? 5000,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const [config, list, metrics] = await Promise.all([
    adminRequest(socketPath, { verb: AdminVerb.CONFIG, json: true }, ask),
    adminRequest(socketPath, { verb: AdminVerb.LIST_INSTANCES, json: true }, ask),
    adminRequest(socketPath, { verb: AdminVerb.METRICS }, ask),
  ]);
  const atMs = (options.monotonicMs ?? (() => performance.now()))();
  const wallMs = (options.wallMs ?? Date.now)();
  const procRoot = options.procRoot ?? '/proc';
  const services = jsonBody(config, 'CONFIG').services;
  const instances = jsonBody(list, 'LIST_INSTANCES').instances;
  if (!Array.isArray(instances))
    throw new TopSampleError('BAD_REPLY', 'LIST_INSTANCES has no instances');
  return {
    atMs,
    wallMs,
    services: Array.isArray(services)
      ? services.map((s) => String((s as { name?: unknown }).name ?? '')).filter((n) => n !== '')
      : [],
    daemons: instances.map((raw) => {
      const i = raw as Record<string, unknown>;
      const pid = typeof i.pid === 'number' ? i.pid : null;
      return {
        service: String(i.service ?? ''),
        version: String(i.version ?? ''),
        pid,
        state: String(i.state ?? ''),
        startedAtUnixMs: typeof i.started_at_unix_ms === 'number' ? i.started_at_unix_ms : wallMs,
        rssBytes: pid === null ? null : readRssBytes(pid, procRoot),
      };
    }),
    metrics: parseOpenMetrics(replyBody(metrics, 'METRICS')),
  };
}

function replyBody(reply: AdminReply, verb: string): string {
  if (reply.exitCode !== 0)
    throw new TopSampleError('ADMIN_REFUSED', `${verb} failed: ${reply.body.trim().slice(0, 200)}`);
  return reply.body;
}

function jsonBody(reply: AdminReply, verb: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(replyBody(reply, verb));
  } catch (error) {
    if (error instanceof TopSampleError) throw error;
    throw new TopSampleError('BAD_REPLY', `${verb} did not answer JSON`);
  }
  if (typeof doc !== 'object' || doc === null)
    throw new TopSampleError('BAD_REPLY', `${verb} did not answer a JSON object`);
  return doc as Record<string, unknown>;
}

/** VmRSS of /proc/<pid>/status in bytes; null when the process is gone or not ours to read. */
export function readRssBytes(pid: number, procRoot = '/proc'): number | null {
  let status: string;
  try {
    status = readFileSync(`${procRoot}/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  return parseVmRss(status);
}

/** The `VmRSS:` line of a /proc/<pid>/status text, in bytes (the kernel writes kB). */
export function parseVmRss(status: string): number | null {
  const at = status.indexOf('\nVmRSS:');
  if (at === -1) return null;
  const end = status.indexOf('\n', at + 1);
  const fields = status
    .slice(at + 7, end === -1 ? undefined : end)
    .trim()
    .split(/\s+/);
  const kb = Number(fields[0]);
  if (!Number.isSafeInteger(kb) || kb < 0 || fields[1] !== 'kB') return null;
  return kb * 1024;
}
