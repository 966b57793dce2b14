// The options of createDispatcher: their types, and validate(), which checks
// them once and resolves every default into the Settings the master runs
// on. It starts nothing; master.ts does.
import type { DispatchListen } from './listeners.js';
import { type DispatchLogger, stderrDispatchLogger } from './log.js';
import { MAX_LISTENERS } from './wire.js';
import type { DispatchHandler } from './worker.js';

export interface SpawnBackoff {
  /** Delay before respawning after a first crash. */
  initialMs: number;
  /** Ceiling of the delay. */
  maxMs: number;
  /** Growth per consecutive crash (default 2). */
  factor?: number;
  /** A worker that lived this long resets the count (default 30,000 ms). */
  resetAfterMs?: number;
}

export interface DispatcherOptionsBase {
  /** One or more listeners: `{ port, host? }` (TCP) or `{ path }` (Unix). */
  listen: DispatchListen | readonly DispatchListen[];
  /** Worker processes (1..1024). */
  workers: number;
  /**
   * Connections sent to one worker and not yet adopted by it. When every
   * worker's queue is full (or every worker is at maxConnectionsPerWorker)
   * the master stops accepting and the kernel's listen backlog holds new
   * connections; none is refused.
   */
  maxQueuePerWorker: number;
  /** Connections one worker holds at once (queued + open). */
  maxConnectionsPerWorker: number;
  /** Rotate a worker after this many connections: stop sending, drain, exit, replace. */
  maxRequestsPerWorker?: number;
  spawnBackoff: SpawnBackoff;
  /** Milliseconds a stopping worker may take to drain before it is killed (rotation and close). */
  shutdownDeadline: number;
  /** How long a new worker may take to report ready (default 10,000 ms). */
  startTimeoutMs?: number;
  /** Arguments after the script (default: none; workerFn mode: this process's). */
  args?: readonly string[];
  /** Default: process.execPath. */
  execPath?: string;
  /** Node flags for workers (default: process.execArgv, like node:cluster). */
  execArgv?: readonly string[];
  /** Workers' environment (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Send workers' stdout/stderr to /dev/null instead of ours (default false). */
  silent?: boolean;
  log?: DispatchLogger;
}

export interface ScriptDispatcherOptions extends DispatcherOptionsBase {
  /** The module each worker runs; it calls serveDispatched(handler). */
  workerScript: string;
  workerFn?: undefined;
}

export interface FnDispatcherOptions extends DispatcherOptionsBase {
  /**
   * Single-file programs: each worker re-runs this process's main script
   * (like node:cluster), and in a worker createDispatcher serves with this
   * handler instead of starting a master.
   */
  workerFn: DispatchHandler;
  workerScript?: undefined;
}

export type DispatcherOptions = ScriptDispatcherOptions | FnDispatcherOptions;

/** The options with every default resolved: what the master runs on. */
export interface Settings {
  listen: readonly DispatchListen[];
  workers: number;
  maxQueuePerWorker: number;
  maxConnectionsPerWorker: number;
  maxRequestsPerWorker: number | undefined;
  backoff: Required<SpawnBackoff>;
  shutdownDeadline: number;
  startTimeoutMs: number;
  command: string;
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  silent: boolean;
  log: DispatchLogger;
}

export function validate(o: DispatcherOptions): Settings {
  const usage = (what: string): never => {
    throw new TypeError(`Usage: createDispatcher(options): ${what}`);
  };
  if (typeof o !== 'object' || o === null) usage('options must be an object');
  const listen: readonly DispatchListen[] = Array.isArray(o.listen)
    ? (o.listen as readonly DispatchListen[])
    : [o.listen as DispatchListen];
  if (listen.length === 0 || listen.length > MAX_LISTENERS) {
    usage(`listen must name 1..${MAX_LISTENERS} listeners`);
  }
  for (const l of listen) {
    if (typeof l !== 'object' || l === null) usage('each listen entry must be an object');
    if ('path' in l) {
      if (typeof l.path !== 'string' || l.path.length === 0) usage('listen.path must be a string');
      if ('noDelay' in l) usage('listen.noDelay is for TCP listeners ({ port }), not { path }');
    } else if (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535) {
      usage('listen needs { port: 0..65535 } or { path }');
    } else if (l.noDelay !== undefined && typeof l.noDelay !== 'boolean') {
      usage('listen.noDelay must be a boolean');
    }
  }
  const int = (v: unknown, name: string, min: number, max = 2 ** 31 - 1): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      usage(`${name} must be an integer ${min}..${max}`);
    }
    return v as number;
  };
  const workers = int(o.workers, 'workers', 1, 1024);
  const maxQueuePerWorker = int(o.maxQueuePerWorker, 'maxQueuePerWorker', 1);
  const maxConnectionsPerWorker = int(o.maxConnectionsPerWorker, 'maxConnectionsPerWorker', 1);
  const maxRequestsPerWorker =
    o.maxRequestsPerWorker === undefined
      ? undefined
      : int(o.maxRequestsPerWorker, 'maxRequestsPerWorker', 1, Number.MAX_SAFE_INTEGER);
  const b = o.spawnBackoff;
  if (typeof b !== 'object' || b === null) usage('spawnBackoff must be { initialMs, maxMs }');
  const backoff: Required<SpawnBackoff> = {
    initialMs: int(b.initialMs, 'spawnBackoff.initialMs', 0),
    maxMs: int(b.maxMs, 'spawnBackoff.maxMs', 0),
    factor: b.factor ?? 2,
    resetAfterMs: int(b.resetAfterMs ?? 30_000, 'spawnBackoff.resetAfterMs', 0),
  };
  if (!(backoff.factor >= 1)) usage('spawnBackoff.factor must be ≥ 1');
  const shutdownDeadline = int(o.shutdownDeadline, 'shutdownDeadline', 0, 0xffffffff);
  const startTimeoutMs = int(o.startTimeoutMs ?? 10_000, 'startTimeoutMs', 1);
  let script: string;
  let args: readonly string[];
  if (o.workerFn !== undefined) {
    if (typeof o.workerFn !== 'function') usage('workerFn must be a function');
    if (o.workerScript !== undefined) usage('give workerScript or workerFn, not both');
    const main = process.argv[1];
    if (main === undefined) usage('workerFn needs a main script to re-run (process.argv[1])');
    script = main as string;
    args = o.args ?? process.argv.slice(2);
  } else {
    if (typeof o.workerScript !== 'string' || o.workerScript.length === 0) {
      usage('workerScript (a path) or workerFn is required');
    }
    script = o.workerScript;
    args = o.args ?? [];
  }
  return {
    listen,
    workers,
    maxQueuePerWorker,
    maxConnectionsPerWorker,
    maxRequestsPerWorker,
    backoff,
    shutdownDeadline,
    startTimeoutMs,
    command: o.execPath ?? process.execPath,
    argv: [...(o.execArgv ?? process.execArgv), script, ...args],
    env: o.env ?? process.env,
    silent: o.silent ?? false,
    log: o.log ?? stderrDispatchLogger,
  };
}
