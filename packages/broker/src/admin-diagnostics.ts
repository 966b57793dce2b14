// The DUMP and DIAGNOSE admin verbs: what the broker knows, as one JSON
// snapshot or readable text — every service, daemon, control channel,
// handoff in progress, spawn budget, fd store count and effective config
// value with its source (DUMP), or one service's (DIAGNOSE). The facts come
// from a DiagnosticsProvider (diagnostics-facts.ts); this file renders them.
import { columns } from '@handoff/backend-sdk/cli';
import { eventLine, type JournalEvent } from './events/event.js';
import type { JournalStats } from './events/journal.js';

/** Where an effective value came from. */
export type ConfigSource = 'flag' | 'env' | 'option' | 'default' | 'definition' | 'derived';

/** A setting a front end (the `serve` command) decided, and how (BrokerOptions.configOrigins). */
export interface ConfigOrigin {
  value: unknown;
  source: ConfigSource;
  detail?: string;
}

export interface ConfigValue {
  key: string;
  value: unknown;
  source: ConfigSource;
  /** The file of a `definition` value; the variable of an `env` one. */
  detail?: string;
}

export interface ServiceFacts {
  name: string;
  version: string;
  /** The definition file (or `<embedded>`). */
  file: string;
  /** Every field, with `definition` when the file set it and `default` when it did not (or set the default). */
  values: ConfigValue[];
}

export interface DaemonFacts {
  service: string;
  version: string;
  pid: number | null;
  state: string;
  /** routed: takes new Hellos; spare: a restart's replacement; retiring: replaced, draining. */
  role: 'routed' | 'spare' | 'retiring';
  startedAtUnixMs: number;
  endpoint: string;
  connectionsRouted: number;
  /** Its control channel is attached. */
  channel: boolean;
  /** Spawned by this broker (false: rediscovered or handed over by an upgrade). */
  spawned: boolean;
}

export interface ChannelFacts {
  service: string | null;
  endpoint: string | null;
  peerPid: number;
  peerUid: number;
  /** Handoff offers sent on it and not answered yet. */
  offersInFlight: number;
}

export interface SpawnBudgetFacts {
  key: string;
  /** Attempts used in the current window, of `attempts`. */
  used: number;
  attempts: number;
  windowMs: number;
}

export interface BrokerDump {
  broker: {
    pid: number;
    version: string;
    uptimeSeconds: number;
    draining: boolean;
  };
  config: ConfigValue[];
  services: ServiceFacts[];
  configErrors: { file: string; field: string | null; message: string }[];
  daemons: DaemonFacts[];
  channels: ChannelFacts[];
  handoffsInProgress: number;
  spawnBudgets: SpawnBudgetFacts[];
  fdStore: { key: string; stored: number; expired: number; refused: number }[];
  journal: JournalStats;
  /** The journal's last events (in memory). */
  events: JournalEvent[];
}

export interface ServiceDiagnosis {
  service: string;
  definitions: ServiceFacts[];
  daemons: DaemonFacts[];
  spawnBudgets: SpawnBudgetFacts[];
  lastSpawnFailure: { atUnixMs: number; message: string; tail: string[] } | null;
  /** This service's recent journal events. */
  events: JournalEvent[];
  /** Its daemons' last output lines. */
  logTail: { t: number | null; pid: number | null; stream: string; line: string }[];
}

/** What DUMP and DIAGNOSE ask of the broker. */
export interface DiagnosticsProvider {
  dump(): BrokerDump;
  /** Null: neither defined nor running, nor in the journal. */
  diagnose(service: string): Promise<ServiceDiagnosis | null>;
}

/** A verb's answer before it becomes an AdminReply (admin.ts wraps it). */
export interface DiagnosticsAnswer {
  exitCode: number;
  body: Record<string, unknown>;
  text: string;
}

export function dumpAnswer(dump: BrokerDump): DiagnosticsAnswer {
  return { exitCode: 0, body: { ok: true, ...dumpJson(dump) }, text: dumpText(dump) };
}

export async function diagnoseAnswer(
  provider: DiagnosticsProvider,
  service: string,
): Promise<DiagnosticsAnswer> {
  if (service === '') {
    const message = 'DIAGNOSE needs a service name';
    return { exitCode: 2, body: failure('USAGE', message), text: `${message}\n` };
  }
  const d = await provider.diagnose(service);
  if (d === null) {
    const message = `unknown service ${JSON.stringify(service)}: not defined, not running, not in the journal`;
    return { exitCode: 1, body: failure('SERVICE_UNKNOWN', message), text: `${message}\n` };
  }
  return { exitCode: 0, body: { ok: true, ...diagnosisJson(d) }, text: diagnosisText(d) };
}

function failure(code: string, message: string): Record<string, unknown> {
  return { ok: false, code, message, error: { code, message } };
}

const valueJson = (v: ConfigValue) => ({
  key: v.key,
  value: v.value,
  source: v.source,
  ...(v.detail === undefined ? {} : { detail: v.detail }),
});

const serviceJson = (s: ServiceFacts) => ({
  name: s.name,
  version: s.version,
  file: s.file,
  values: s.values.map(valueJson),
});

const daemonJson = (d: DaemonFacts) => ({
  service: d.service,
  version: d.version,
  pid: d.pid,
  state: d.state,
  role: d.role,
  started_at_unix_ms: d.startedAtUnixMs,
  endpoint: d.endpoint,
  connections_routed: d.connectionsRouted,
  channel_attached: d.channel,
  spawned: d.spawned,
});

const budgetJson = (b: SpawnBudgetFacts) => ({
  key: b.key,
  used: b.used,
  attempts: b.attempts,
  window_ms: b.windowMs,
});

function dumpJson(d: BrokerDump): Record<string, unknown> {
  return {
    broker: {
      pid: d.broker.pid,
      version: d.broker.version,
      uptime_seconds: d.broker.uptimeSeconds,
      draining: d.broker.draining,
    },
    config: d.config.map(valueJson),
    services: d.services.map(serviceJson),
    config_errors: d.configErrors,
    daemons: d.daemons.map(daemonJson),
    channels: d.channels.map((c) => ({
      service: c.service,
      endpoint: c.endpoint,
      peer_pid: c.peerPid,
      peer_uid: c.peerUid,
      offers_in_flight: c.offersInFlight,
    })),
    handoffs_in_progress: d.handoffsInProgress,
    spawn_budgets: d.spawnBudgets.map(budgetJson),
    fd_store: d.fdStore,
    journal: d.journal,
    events: d.events,
  };
}

function diagnosisJson(d: ServiceDiagnosis): Record<string, unknown> {
  return {
    service: d.service,
    definitions: d.definitions.map(serviceJson),
    daemons: d.daemons.map(daemonJson),
    spawn_budgets: d.spawnBudgets.map(budgetJson),
    last_spawn_failure:
      d.lastSpawnFailure === null
        ? null
        : {
            at_unix_ms: d.lastSpawnFailure.atUnixMs,
            message: d.lastSpawnFailure.message,
            tail: d.lastSpawnFailure.tail,
          },
    events: d.events,
    log_tail: d.logTail,
  };
}

function dumpText(d: BrokerDump): string {
  const out: string[] = [];
  out.push(
    `broker: pid ${d.broker.pid}, version ${d.broker.version}, up ${Math.floor(d.broker.uptimeSeconds)} s, ${d.broker.draining ? 'draining' : 'serving'}\n`,
  );
  out.push(section('config', table(d.config.map(valueRow))));
  for (const s of d.services) out.push(serviceText(s));
  if (d.configErrors.length > 0)
    out.push(
      section(
        'config errors',
        d.configErrors
          .map((e) => `${e.file}${e.field ? ` (${e.field})` : ''}: ${e.message}\n`)
          .join(''),
      ),
    );
  out.push(section('daemons', daemonsText(d.daemons)));
  out.push(
    section(
      'control channels',
      d.channels.length === 0
        ? 'none\n'
        : table([
            ['SERVICE', 'PEER PID', 'UID', 'OFFERS', 'ENDPOINT'],
            ...d.channels.map((c) => [
              c.service ?? '-',
              String(c.peerPid),
              String(c.peerUid),
              String(c.offersInFlight),
              c.endpoint ?? '-',
            ]),
          ]),
    ),
  );
  out.push(`handoffs in progress: ${d.handoffsInProgress}\n`);
  out.push(section('spawn budgets', budgetsText(d.spawnBudgets)));
  out.push(
    section(
      'fd store',
      d.fdStore.length === 0
        ? 'empty\n'
        : d.fdStore
            .map(
              (f) => `${f.key}: ${f.stored} stored, ${f.expired} expired, ${f.refused} refused\n`,
            )
            .join(''),
    ),
  );
  out.push(
    `journal: ${d.journal.path ?? 'in memory only'}, ${d.journal.dropped} dropped${d.journal.failing ? `, failing (${d.journal.failing})` : ''}\n`,
  );
  out.push(section('recent events', eventsText(d.events)));
  return out.join('');
}

function diagnosisText(d: ServiceDiagnosis): string {
  const out: string[] = [`service: ${d.service}\n`];
  if (d.definitions.length === 0)
    out.push('not defined (known from running daemons or the journal)\n');
  for (const s of d.definitions) out.push(serviceText(s));
  out.push(section('daemons', daemonsText(d.daemons)));
  out.push(section('spawn budgets', budgetsText(d.spawnBudgets)));
  if (d.lastSpawnFailure)
    out.push(
      section(
        'last spawn failure',
        `${new Date(d.lastSpawnFailure.atUnixMs).toISOString()} ${d.lastSpawnFailure.message}\n${d.lastSpawnFailure.tail.map((l) => `  ${l}\n`).join('')}`,
      ),
    );
  out.push(section('recent events', eventsText(d.events)));
  out.push(
    section(
      'log tail',
      d.logTail.length === 0
        ? 'none\n'
        : d.logTail.map((l) => `${l.pid ?? '-'} ${l.stream} ${l.line}\n`).join(''),
    ),
  );
  return out.join('');
}

function serviceText(s: ServiceFacts): string {
  return section(`service ${s.name}@${s.version} (${s.file})`, table(s.values.map(valueRow)));
}

function daemonsText(daemons: DaemonFacts[]): string {
  if (daemons.length === 0) return 'none\n';
  return table([
    ['SERVICE', 'VERSION', 'PID', 'STATE', 'ROLE', 'CHANNEL', 'STARTED', 'ENDPOINT'],
    ...daemons.map((d) => [
      d.service,
      d.version,
      d.pid === null ? '-' : String(d.pid),
      d.state,
      d.role,
      d.channel ? 'yes' : 'no',
      new Date(d.startedAtUnixMs).toISOString(),
      d.endpoint,
    ]),
  ]);
}

function budgetsText(budgets: SpawnBudgetFacts[]): string {
  if (budgets.length === 0) return 'none used\n';
  return budgets
    .map((b) => `${b.key}: ${b.used} of ${b.attempts} attempts used per ${b.windowMs} ms\n`)
    .join('');
}

function eventsText(events: JournalEvent[]): string {
  return events.length === 0 ? 'none\n' : events.map(eventLine).join('');
}

function valueRow(v: ConfigValue): string[] {
  const source = v.detail === undefined ? v.source : `${v.source} (${v.detail})`;
  return [v.key, JSON.stringify(v.value) ?? 'null', source];
}

function section(title: string, body: string): string {
  return `\n${title}:\n${body
    .split('\n')
    .map((l) => (l === '' ? l : `  ${l}`))
    .join('\n')}`;
}

/** Left-aligned columns, two spaces apart (the CLI's own layout). */
function table(rows: string[][]): string {
  return rows.length === 0 ? '(none)\n' : columns(rows);
}
