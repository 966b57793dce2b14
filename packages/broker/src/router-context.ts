// What the Hello router needs from the broker around it: routing decisions,
// backends, admin answers, deadlines and where to report, with the defaults
// of its deadlines and its metrics hooks. broker-server.ts builds one per
// broker; the router and the handoff code only read it.
import { type AdminReply, type AdminRequest, ErrorCode, PROTOCOL_VERSION } from '@handoff/protocol';
import type { Backend } from './backend-registry.js';
import type { ServiceDefinition } from './config/definition.js';
import { definitionsNamed } from './config/definition-index.js';
import type { HandoffTokenPool } from './handoff/token-pool.js';
import { HelloRateLimiter, type HelloRateLimitOptions } from './hello-rate-limit.js';
import type { BrokerMetrics, Labels } from './metrics.js';
import { pinnedLabels } from './metrics-series.js';
import { refusalLabelFor } from './refusal-label.js';
import { selectDefinition } from './version-policy.js';

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
  /**
   * The backend a Hello can be sent to right now, without a turn of the
   * microtask queue (the usual case: a ready daemon), or null to ask
   * acquire(), which spawns, waits and refuses. Absent: always acquire().
   */
  acquireNow?(definition: ServiceDefinition): Backend | null;
  admin(request: AdminRequest): Promise<AdminReply>;
  nextConnectionId(): bigint;
  /** The broker's own pool of handoff tokens. */
  tokens: HandoffTokenPool;
  helloDeadlineMs: number;
  handoffDeadlineMs: number;
  /** The retry hint sent with Refused{FD_PRESSURE}. */
  fdPressureRetryMs: number;
  /** The per-uid Hello rate limit (src/hello-rate-limit.ts): null to go ahead, else retry_after_ms. */
  admitHello(uid: number): number | null;
  daemonMinProtocol: number;
  daemonMaxProtocol: number;
  /** Observations for metrics and logs. */
  /** `code`: the Refused code the client was told, when refused (metrics count refusals by it). */
  observeHello(service: string, outcome: HelloOutcome, seconds: number, code?: ErrorCode): void;
  observeHandoff(outcome: 'accepted' | 'fallback' | 'reconnect', seconds: number): void;
  /**
   * `fields` may be a function, called only if the line is logged: the
   * router's debug lines would otherwise build their fields on every Hello.
   */
  log(
    level: 'info' | 'warn' | 'debug',
    fields: Record<string, unknown> | (() => Record<string, unknown>),
    message: string,
  ): void;
}

/** Seconds since `started` (a process.hrtime.bigint()), as the observe hooks take them. */
export function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** How many (name, wanted version) choices routerSelect keeps before starting over. */
const REMEMBERED_CHOICES = 256;

/**
 * The router's select: SHUTTING_DOWN once the broker refuses, else
 * selectDefinition over `definitions()`. Its choices are remembered for the
 * next Hellos (parsing and comparing versions is a measurable part of one)
 * until the broker swaps in another definitions array on a reload; only
 * choices that route, and a bounded number, since clients pick the keys.
 */
export function routerSelect(
  definitions: () => readonly ServiceDefinition[],
  refusing: () => boolean,
): RouterContext['select'] {
  let rememberedFor: readonly ServiceDefinition[] | null = null;
  let rememberedLength = 0;
  let remembered = new Map<string, Map<string, RouteDecision>>();
  let count = 0;
  return (name, wanted) => {
    if (refusing())
      return { ok: false, code: ErrorCode.SHUTTING_DOWN, reason: 'the broker is shutting down' };
    const list = definitions();
    // A list edited in place (the broker never does) is caught by its length.
    if (list !== rememberedFor || list.length !== rememberedLength || count >= REMEMBERED_CHOICES) {
      rememberedFor = list;
      rememberedLength = list.length;
      remembered = new Map();
      count = 0;
    }
    const known = remembered.get(name)?.get(wanted);
    if (known !== undefined) return known;
    const decision = selectDefinition(list, name, wanted);
    if (decision.ok) {
      let byVersion = remembered.get(name);
      if (byVersion === undefined) {
        byVersion = new Map();
        remembered.set(name, byVersion);
      }
      byVersion.set(wanted, decision);
      count++;
    }
    return decision;
  };
}

/** The router's deadlines and protocol range: the broker's options, defaulted. */
export function routerDeadlines(options: {
  helloDeadlineMs?: number | undefined;
  handoffDeadlineMs?: number | undefined;
  fdPressureRetryMs?: number | undefined;
}): Pick<
  RouterContext,
  | 'helloDeadlineMs'
  | 'handoffDeadlineMs'
  | 'fdPressureRetryMs'
  | 'daemonMinProtocol'
  | 'daemonMaxProtocol'
> {
  return {
    helloDeadlineMs: options.helloDeadlineMs ?? 30_000,
    handoffDeadlineMs: options.handoffDeadlineMs ?? 5000,
    fdPressureRetryMs: options.fdPressureRetryMs ?? 250,
    daemonMinProtocol: PROTOCOL_VERSION,
    daemonMaxProtocol: PROTOCOL_VERSION,
  };
}

/** The per-uid Hello rate limit from the broker's options; `false` turns it off. */
export function routerRateLimit(
  options: HelloRateLimitOptions | false | undefined,
): Pick<RouterContext, 'admitHello'> {
  if (options === false) return { admitHello: () => null };
  const limiter = new HelloRateLimiter(options);
  return { admitHello: (uid) => limiter.admit(uid) };
}

/** Routed Hellos' label objects kept per service; beyond this many services they start over. */
const KEPT_LABELS = 1024;

/** The pinned labels of one service's routed Hellos. */
interface RoutedLabels {
  service: Labels;
  handoff: Labels;
  reconnect: Labels;
}

/** Names a client asked for that no definition has, kept as they are in the metrics' labels. */
export const UNDEFINED_NAMES_KEPT = 64;

/** The `service` label of a refused Hello for a name past UNDEFINED_NAMES_KEPT (no service name has parentheses). */
export const OTHER_SERVICES_LABEL = '(other)';

/**
 * The `service` label of a Hello the router did not route. A client names
 * whatever service it likes, and every name would be a new series in three
 * families, for ever: the broker's memory would grow with every name a
 * buggy or hostile client of the same user tries. Defined names (and `''`,
 * the name not read) are kept; names no definition has are kept for the
 * first UNDEFINED_NAMES_KEPT of them, the diagnostics an operator wants
 * ("clients ask for `nope`"), and counted under OTHER_SERVICES_LABEL after.
 */
function refusedServiceLabel(
  definitions: () => readonly ServiceDefinition[],
): (service: string) => string {
  const undefinedNames = new Set<string>();
  return (service) => {
    if (service === '' || undefinedNames.has(service)) return service;
    // By the name index, as selectDefinition: a flood of refusals must not scan every definition.
    if (definitionsNamed(definitions(), service).length > 0) return service;
    if (undefinedNames.size >= UNDEFINED_NAMES_KEPT) return OTHER_SERVICES_LABEL;
    undefinedNames.add(service);
    return service;
  };
}

/**
 * What the router observes, counted in the broker's metrics. A routed
 * Hello (handoff, reconnect) updates its series through pinned labels kept
 * per service, which remember their series (src/metrics-series.ts); the
 * service of a routed Hello is a defined one, so there are few. A refused
 * one gets fresh objects, its service label bounded (refusedServiceLabel).
 * `definitions`: the broker's current service definitions.
 */
export function routerObservers(
  counters: BrokerMetrics,
  definitions: () => readonly ServiceDefinition[],
): Pick<RouterContext, 'observeHello' | 'observeHandoff'> {
  const refusedLabel = refusedServiceLabel(definitions);
  const routed = new Map<string, RoutedLabels>();
  const routedLabels = (service: string): RoutedLabels => {
    let labels = routed.get(service);
    if (labels === undefined) {
      if (routed.size >= KEPT_LABELS) routed.clear();
      labels = {
        service: pinnedLabels({ service }),
        handoff: pinnedLabels({ service, outcome: 'handoff' }),
        reconnect: pinnedLabels({ service, outcome: 'reconnect' }),
      };
      routed.set(service, labels);
    }
    return labels;
  };
  const byOutcome = {
    accepted: pinnedLabels({ outcome: 'accepted' }),
    fallback: pinnedLabels({ outcome: 'fallback' }),
    reconnect: pinnedLabels({ outcome: 'reconnect' }),
  };
  return {
    observeHello: (service, outcome, seconds, code) => {
      if (outcome === 'handoff' || outcome === 'reconnect') {
        const labels = routedLabels(service);
        counters.helloTotal.inc(labels[outcome]);
        counters.helloDuration.observe(seconds, labels.service);
        return;
      }
      const label = refusedLabel(service);
      counters.helloTotal.inc({ service: label, outcome });
      counters.helloDuration.observe(seconds, { service: label });
      const refused = refusalLabelFor(outcome, code);
      if (refused !== undefined) counters.helloRefusedTotal.inc({ service: label, code: refused });
    },
    observeHandoff: (outcome, seconds) => {
      counters.handoffTotal.inc(byOutcome[outcome]);
      if (outcome !== 'reconnect') counters.handoffDuration.observe(seconds);
    },
  };
}
