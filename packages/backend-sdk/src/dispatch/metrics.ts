// The dispatcher's statistics as a plain object and as OpenMetrics 1.0
// text. Owns the names, help strings and rendering of its metric families;
// collecting the numbers is the dispatcher's job, serving them the caller's.

/** What an OpenMetrics scrape is served as. */
export const DISPATCHER_METRICS_CONTENT_TYPE =
  'application/openmetrics-text; version=1.0.0; charset=utf-8';

export type DispatcherErrorKind =
  /** Connections in a sendmsg the kernel refused. */
  | 'send'
  /** Connections in dispatches a worker never received whole (e.g. its fd table was full). */
  | 'dropped'
  /** Connections a worker received but could not adopt. */
  | 'adopt'
  /** Connections the master closed after giving up on them (logged). */
  | 'closed'
  /** Adopted connections still open when their worker died. */
  | 'abandoned'
  /** Malformed messages from a worker (its channel is closed). */
  | 'protocol'
  /** accept(2) failures (EMFILE, ENFILE, …); the connection stays in the backlog. */
  | 'accept'
  /** Worker processes that could not be spawned. */
  | 'spawn'
  /** Worker processes that exited without being asked to. */
  | 'crash';

export interface DispatcherWorkerStats {
  slot: number;
  pid: number;
  /** How many workers this slot had before this one. */
  generation: number;
  state: 'starting' | 'ready' | 'retiring';
  /** Connections sent (or about to be) and not yet adopted. */
  queueDepth: number;
  /** Queued + adopted and still open. */
  connections: number;
  /** Connections assigned over its life. */
  dispatched: number;
}

export interface DispatcherStats {
  /** Workers configured. */
  workers: number;
  /** Worker processes running (ready, starting or retiring). */
  alive: number;
  /** Whether the listeners are accepting (false while every queue is full). */
  accepting: boolean;
  /** Accepted and not yet closed: waiting in the master, queued, or served. */
  activeConnections: number;
  /** Accepted, waiting in the master for a worker with room. */
  waitingConnections: number;
  totalAccepted: number;
  /** Connections adopted by a worker. */
  totalDispatched: number;
  totalCompleted: number;
  /** Connections sent again after a failed send, a drop or a crashed worker. */
  redispatched: number;
  /** Messages that carried connections to workers (up to 253 each). */
  dispatchMessages: number;
  /** Sum of errorsByKind. */
  errors: number;
  errorsByKind: Record<DispatcherErrorKind, number>;
  /** Mean time from accept to the worker's adoption report, ms. */
  avgAdoptMs: number;
  adoptCount: number;
  adoptSumMs: number;
  respawns: number;
  rotations: number;
  /** Queue depth of each worker, in the order of perWorker. */
  queueDepth: number[];
  perWorker: DispatcherWorkerStats[];
}

const PREFIX = 'handoff_dispatcher';

/** Renders stats as OpenMetrics text, ending with "# EOF\n". */
export function renderDispatcherMetrics(stats: DispatcherStats): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string, unit?: string) => {
    out.push(`# TYPE ${PREFIX}_${name} ${type}`);
    if (unit) out.push(`# UNIT ${PREFIX}_${name} ${unit}`);
    out.push(`# HELP ${PREFIX}_${name} ${help}`);
  };
  const sample = (name: string, value: number, labels?: Record<string, string | number>) => {
    out.push(`${PREFIX}_${name}${labelText(labels)} ${formatValue(value)}`);
  };

  family('workers', 'gauge', 'Worker processes configured.');
  sample('workers', stats.workers);
  family('workers_alive', 'gauge', 'Worker processes running.');
  sample('workers_alive', stats.alive);
  family('accepting', 'gauge', '1 while the listeners accept, 0 while every worker queue is full.');
  sample('accepting', stats.accepting ? 1 : 0);
  family('active_connections', 'gauge', 'Connections accepted and not yet closed.');
  sample('active_connections', stats.activeConnections);
  family('waiting_connections', 'gauge', 'Connections waiting in the master for a worker.');
  sample('waiting_connections', stats.waitingConnections);
  family('accepted_connections', 'counter', 'Connections accepted.');
  sample('accepted_connections_total', stats.totalAccepted);
  family('dispatched_connections', 'counter', 'Connections adopted by a worker.');
  sample('dispatched_connections_total', stats.totalDispatched);
  family('completed_connections', 'counter', 'Adopted connections that have closed.');
  sample('completed_connections_total', stats.totalCompleted);
  family('redispatched_connections', 'counter', 'Connections sent again to another worker.');
  sample('redispatched_connections_total', stats.redispatched);
  family('dispatch_messages', 'counter', 'Messages that carried connections to workers.');
  sample('dispatch_messages_total', stats.dispatchMessages);
  family('errors', 'counter', 'Failures by kind; every one is also logged.');
  for (const [kind, n] of Object.entries(stats.errorsByKind)) {
    sample('errors_total', n, { kind });
  }
  family('adopt_seconds', 'summary', 'Time from accept to adoption by a worker.', 'seconds');
  sample('adopt_seconds_count', stats.adoptCount);
  sample('adopt_seconds_sum', stats.adoptSumMs / 1000);
  family('worker_restarts', 'counter', 'Workers replaced, by reason.');
  sample('worker_restarts_total', stats.respawns, { reason: 'crash' });
  sample('worker_restarts_total', stats.rotations, { reason: 'rotation' });
  family('queue_depth', 'gauge', 'Connections sent to a worker and not yet adopted.');
  for (const w of stats.perWorker) sample('queue_depth', w.queueDepth, workerLabels(w));
  family('worker_connections', 'gauge', 'Connections a worker holds: queued, or adopted and open.');
  for (const w of stats.perWorker) sample('worker_connections', w.connections, workerLabels(w));
  out.push('# EOF');
  return `${out.join('\n')}\n`;
}

function workerLabels(w: DispatcherWorkerStats): Record<string, string | number> {
  return { slot: w.slot, pid: w.pid, state: w.state };
}

function labelText(labels: Record<string, string | number> | undefined): string {
  if (labels === undefined) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(String(v))}"`);
  return `{${parts.join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}
