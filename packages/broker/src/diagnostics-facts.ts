// The facts DUMP and DIAGNOSE render (admin-diagnostics.ts), gathered from
// a live broker: its definitions with each field's source, its daemons and
// control channels, spawn budgets, fd store, journal, daemon log tails, and
// each effective setting with where it came from (flag, env, option, default).
import { isDeepStrictEqual } from 'node:util';
import type {
  ConfigOrigin,
  ConfigSource,
  ConfigValue,
  DaemonFacts,
  DiagnosticsProvider,
  ServiceFacts,
  SpawnBudgetFacts,
} from './admin-diagnostics.js';
import type { Backend, BackendRegistry } from './backend-registry.js';
import type { BrokerOptions } from './broker-api.js';
import {
  EMBEDDED_SOURCE,
  parseServiceDefinition,
  type ServiceDefinition,
} from './config/definition.js';
import type { EventJournal } from './events/journal.js';
import type { BackendChannel } from './handoff/control-channel.js';
import { lastLines, trackSpawnFailures } from './logs/failure-tail.js';
import { readLastRecords } from './logs/reader.js';
import { brokerPackageVersion } from './package-version.js';
import { routerDeadlines } from './router-context.js';
import type { SpawnBudget } from './spawn-budget.js';

export interface DiagnosticsState {
  options: BrokerOptions;
  socketPath: string;
  controlPath: string;
  startedAt: number;
  registry: BackendRegistry;
  budget: SpawnBudget;
  journal: EventJournal;
  definitions(): readonly ServiceDefinition[];
  configErrors(): readonly { file: string; field?: string | undefined; message: string }[];
  channels(): Iterable<BackendChannel>;
  fdStore(): { key: string; stored: number; expired: number; refused: number }[];
  draining(): boolean;
}

/** Journal events DUMP carries; DIAGNOSE carries this many of its service's. */
export const DUMP_EVENTS = 50;
/** Daemon output lines DIAGNOSE carries. */
export const DIAGNOSE_LOG_LINES = 20;

export function diagnosticsProvider(state: DiagnosticsState): DiagnosticsProvider {
  const spawnFailures = trackSpawnFailures(state.registry);
  const daemons = (): DaemonFacts[] =>
    state.registry
      .list()
      .map((b) => daemonFacts(b, state.registry))
      .sort((a, b) => a.service.localeCompare(b.service) || a.version.localeCompare(b.version));
  const budgets = (): SpawnBudgetFacts[] => {
    const u = state.budget.usage();
    return u.used.map((x) => ({ ...x, attempts: u.attempts, windowMs: u.windowMs }));
  };
  return {
    dump: () => {
      const channels = [...state.channels()].map((c) => ({
        service: c.registration?.namespaceId ?? null,
        endpoint: c.endpoint?.path ?? null,
        peerPid: c.peer.pid,
        peerUid: c.peer.uid,
        offersInFlight: c.inFlight,
      }));
      return {
        broker: {
          pid: process.pid,
          version: brokerPackageVersion() ?? 'unknown',
          uptimeSeconds: (Date.now() - state.startedAt) / 1000,
          draining: state.draining(),
        },
        config: brokerConfig(state),
        services: state.definitions().map(serviceFacts),
        configErrors: state
          .configErrors()
          .map((e) => ({ file: e.file, field: e.field ?? null, message: e.message })),
        daemons: daemons(),
        channels,
        handoffsInProgress: channels.reduce((n, c) => n + c.offersInFlight, 0),
        spawnBudgets: budgets(),
        fdStore: state.fdStore(),
        journal: state.journal.stats(),
        events: state.journal.recent(DUMP_EVENTS),
      };
    },
    diagnose: async (service) => {
      const definitions = state.definitions().filter((d) => d.name === service);
      const running = state.registry.list().filter((b) => b.definition.name === service);
      const events = state.journal.recent(DUMP_EVENTS, service);
      if (definitions.length === 0 && running.length === 0 && events.length === 0) return null;
      const failure = [...spawnFailures()].reverse().find((f) => f.service === service);
      return {
        service,
        definitions: definitions.map(serviceFacts),
        daemons: daemons().filter((d) => d.service === service),
        spawnBudgets: budgets().filter((b) => b.key.startsWith(`${service}@`)),
        lastSpawnFailure: failure
          ? { atUnixMs: failure.atUnixMs, message: failure.message, tail: failure.tail }
          : null,
        events,
        logTail: await logTail(state.options.stateDir, service, running),
      };
    },
  };
}

function daemonFacts(b: Backend, registry: BackendRegistry): DaemonFacts {
  return {
    service: b.definition.name,
    version: b.definition.version,
    pid: b.pid,
    state: b.state,
    role: registry.get(b.key) === b ? 'routed' : b.state === 'stopping' ? 'retiring' : 'spare',
    startedAtUnixMs: b.startedAt,
    endpoint: b.endpoint,
    connectionsRouted: b.routed,
    channel: b.channel !== null,
    spawned: b.child !== null,
  };
}

/** The daemons' log files when there is a state dir, else what their pipes last said. */
async function logTail(
  stateDir: string | undefined,
  service: string,
  running: Backend[],
): Promise<{ t: number | null; pid: number | null; stream: string; line: string }[]> {
  if (stateDir !== undefined) {
    try {
      const { records } = await readLastRecords(stateDir, service, DIAGNOSE_LOG_LINES);
      return records.map((r) => ({ t: r.t, pid: r.pid, stream: r.stream, line: r.line }));
    } catch {
      // No log files (yet): the pipes' tails below.
    }
  }
  return running.flatMap((b) =>
    lastLines(b.output?.tail() ?? '', DIAGNOSE_LOG_LINES).map((line) => ({
      t: null,
      pid: b.pid,
      stream: 'output',
      line,
    })),
  );
}

/** What every field is when a definition leaves it out. */
let defaults: ServiceDefinition | undefined;
const IDENTITY = new Set(['name', 'version', 'command', 'source']);

/** Each field of a definition, `definition` when its file set it, `default` when it did not. */
export function serviceFacts(d: ServiceDefinition): ServiceFacts {
  defaults ??= parseServiceDefinition({ name: 'x', version: '1.0.0', command: 'x' }, '<defaults>');
  const fromFile: ConfigSource = 'definition';
  const detail = d.source === EMBEDDED_SOURCE ? 'startBroker services' : d.source;
  const keys = [...new Set([...Object.keys(d), ...Object.keys(defaults)])].filter(
    (k) => k !== 'source',
  );
  const values = keys.map((key): ConfigValue => {
    const value = (d as unknown as Record<string, unknown>)[key];
    const fallback = (defaults as unknown as Record<string, unknown>)[key];
    const defaulted = !IDENTITY.has(key) && isDeepStrictEqual(value, fallback);
    return defaulted
      ? { key, value: value ?? null, source: 'default' }
      : { key, value: value ?? null, source: fromFile, detail };
  });
  return { name: d.name, version: d.version, file: d.source, values };
}

/** The broker's effective settings and where each came from. */
function brokerConfig(state: DiagnosticsState): ConfigValue[] {
  const o = state.options;
  const origins: Readonly<Record<string, ConfigOrigin>> = o.configOrigins ?? {};
  const env = process.env;
  const out: ConfigValue[] = [];
  const add = (key: string, value: unknown, source: ConfigSource, detail?: string) => {
    const origin = origins[key];
    if (origin)
      out.push({
        key,
        value,
        source: origin.source,
        ...(origin.detail === undefined ? {} : { detail: origin.detail }),
      });
    else out.push({ key, value, source, ...(detail === undefined ? {} : { detail }) });
  };
  const given = (v: unknown): ConfigSource => (v === undefined ? 'default' : 'option');
  add(
    'socket_path',
    state.socketPath,
    o.socketPath !== undefined || o.listenFd !== undefined
      ? 'option'
      : env.HANDOFF_BROKER_SOCKET
        ? 'env'
        : 'default',
    o.socketPath === undefined && env.HANDOFF_BROKER_SOCKET ? 'HANDOFF_BROKER_SOCKET' : undefined,
  );
  add('control_path', state.controlPath, 'derived', 'beside the socket');
  add('state_dir', o.stateDir ?? null, given(o.stateDir));
  add('config_dir', o.configDir ?? null, given(o.configDir));
  add('config_file', o.configFile ?? null, given(o.configFile));
  const deadlines = routerDeadlines(o);
  add('hello_deadline_ms', deadlines.helloDeadlineMs, given(o.helloDeadlineMs));
  add('handoff_deadline_ms', deadlines.handoffDeadlineMs, given(o.handoffDeadlineMs));
  add('fd_pressure_retry_ms', deadlines.fdPressureRetryMs, given(o.fdPressureRetryMs));
  if (o.logger) add('log_level', o.logger.level, 'option', 'logger');
  else
    add(
      'log_level',
      env.HANDOFF_LOG_LEVEL ?? 'info',
      env.HANDOFF_LOG_LEVEL ? 'env' : 'default',
      env.HANDOFF_LOG_LEVEL ? 'HANDOFF_LOG_LEVEL' : undefined,
    );
  add('watch_config', o.watchConfig !== false, given(o.watchConfig));
  add('stop_backends_on_close', o.stopBackendsOnClose !== false, given(o.stopBackendsOnClose));
  add('own_daemon_sockets', o.ownDaemonSockets !== false, given(o.ownDaemonSockets));
  const budget = state.budget.usage();
  add('spawn_budget_attempts', budget.attempts, 'default');
  add('spawn_budget_window_ms', budget.windowMs, 'default');
  add('event_journal_path', state.journal.path, given(o.journal));
  add('event_journal_max_bytes', state.journal.maxBytes, given(o.journal));
  add('event_journal_files', state.journal.files, given(o.journal));
  // Whatever else the front end decided (serve's --drain, say).
  for (const [key, origin] of Object.entries(origins)) {
    if (out.some((v) => v.key === key)) continue;
    out.push({
      key,
      value: origin.value,
      source: origin.source,
      ...(origin.detail === undefined ? {} : { detail: origin.detail }),
    });
  }
  return out;
}
