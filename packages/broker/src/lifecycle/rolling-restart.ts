// A rolling restart of one service@version's daemon: a replacement starts
// on the other endpoint slot while the old one serves, is promoted once it
// attached and passed its verified probe, and only then is the old one
// told to drain (SIGTERM, SIGKILL after drainMs). No Hello is refused on the
// way. The registry (backend-registry.ts) owns the backends; this file the order.
import type { Backend } from '../backend.js';
import type { ServiceDefinition } from '../config/definition.js';
import { BrokerError } from '../errors.js';
import { RouteError } from '../route-error.js';

export interface RestartOptions {
  /** How long the replacement may take to be ready (default: the definition's readyTimeoutMs). */
  readyDeadlineMs?: number;
  /** How long the old daemon may drain after SIGTERM (default: the definition's drainMs). */
  drainMs?: number;
}

export interface RestartOutcome {
  /** `service@version` */
  key: string;
  oldPid: number | null;
  newPid: number | null;
  /** The endpoint the replacement serves (the slot the old one did not). */
  endpoint: string;
  /** From the request to the replacement being routed. */
  tookMs: number;
  drainMs: number;
  /** Settles once the old daemon has exited (drained, or killed at the deadline). */
  retired: Promise<void>;
}

export type RestartErrorCode =
  /** Nothing runs for that service@version: there is nothing to replace (a Hello starts one). */
  | 'NOT_RUNNING'
  /** The replacement could not be started (exec failed, its socket could not be bound). */
  | 'SPAWN_FAILED'
  /** The replacement exited before it was ready. */
  | 'REPLACEMENT_EXITED'
  /** The replacement did not attach and pass its probe within the ready deadline. */
  | 'READY_TIMEOUT'
  /** The replacement attached, but its verified identity probe failed. */
  | 'PROBE_FAILED'
  /** The broker is closing. */
  | 'SHUTTING_DOWN';

/** A rolling restart that did not happen: the old daemon, if any, still serves. */
export class RestartError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:RestartError';
  override readonly name = 'RestartError';
  declare readonly code: RestartErrorCode;
  /** `service@version` */
  readonly service: string;
  /** The replacement's last output (stderr and stdout), when it ran. */
  readonly outputTail: string;
  constructor(code: RestartErrorCode, service: string, message: string, outputTail = '') {
    super(code, message);
    this.service = service;
    this.outputTail = outputTail;
  }
}

/** What a rolling restart needs of the registry. */
export interface RestartHost {
  get(key: string): Backend | undefined;
  startReplacement(definition: ServiceDefinition, readyTimeoutMs: number): Promise<Backend>;
  promote(spare: Backend): Backend | undefined;
  retire(old: Backend, reason: string, drainMs: number): Promise<void>;
}

const REASON_CODES: Record<string, RestartErrorCode> = {
  exited: 'REPLACEMENT_EXITED',
  'ready timeout': 'READY_TIMEOUT',
  'probe failed': 'PROBE_FAILED',
};

/** How long routing may still be handing clients to the old daemon after the switch. */
const OFFERS_SETTLE_MS = 5000;

/**
 * Replaces the daemon routed for `key` (with `definition`, else the one it
 * runs). Resolves once new Hellos reach the replacement; rejects with
 * RestartError, the old daemon untouched and the replacement gone.
 */
export async function rollingRestart(
  host: RestartHost,
  key: string,
  definition: ServiceDefinition | undefined,
  options: RestartOptions,
): Promise<RestartOutcome> {
  const started = performance.now();
  const old = host.get(key);
  if (old?.state !== 'ready')
    throw new RestartError(
      'NOT_RUNNING',
      key,
      `${key} has no running daemon to restart (the next client starts one)`,
    );
  const target = definition ?? old.definition;
  const drainMs = options.drainMs ?? target.drainMs;
  let spare: Backend;
  try {
    spare = await host.startReplacement(target, options.readyDeadlineMs ?? target.readyTimeoutMs);
  } catch (error) {
    throw restartFailure(key, error);
  }
  let replaced: Backend | undefined;
  try {
    replaced = host.promote(spare);
  } catch (error) {
    throw new RestartError('REPLACEMENT_EXITED', key, `${key}: ${(error as Error).message}`);
  }
  const retired = replaced
    ? offersSettled(replaced).then(() =>
        host.retire(replaced, `replaced by pid ${spare.pid ?? '?'} (rolling restart)`, drainMs),
      )
    : Promise.resolve();
  return {
    key,
    oldPid: replaced?.pid ?? old.pid,
    newPid: spare.pid,
    endpoint: spare.endpoint,
    tookMs: Math.round(performance.now() - started),
    drainMs,
    retired,
  };
}

function restartFailure(key: string, error: unknown): RestartError {
  if (!(error instanceof RouteError)) {
    return new RestartError('SPAWN_FAILED', key, `${key}: ${(error as Error).message}`);
  }
  if (error.code === 'SHUTTING_DOWN')
    return new RestartError('SHUTTING_DOWN', key, 'the broker is shutting down');
  const code = REASON_CODES[error.details.reason ?? ''] ?? 'SPAWN_FAILED';
  return new RestartError(
    code,
    key,
    `replacement for ${key} failed, the old daemon keeps serving: ${error.message}`,
    error.details.stderr_tail ?? '',
  );
}

/**
 * Hellos that got the old backend just before the switch are still
 * offering it clients: its SIGTERM waits until those offers are answered,
 * so none is refused by a daemon already draining.
 */
async function offersSettled(old: Backend): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  const deadline = Date.now() + OFFERS_SETTLE_MS;
  while ((old.channel?.inFlight ?? 0) > 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 5));
}
