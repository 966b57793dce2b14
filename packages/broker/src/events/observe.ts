// What the journal records, and from where: the registry's events (spawns,
// failed spawns and probes, readiness, exits, restarts), the broker's
// (config reloads, upgrades, shutdown) and the Hello router's observations
// (refusals by code, handoff fallbacks). Listeners only: nothing here
// changes what it observes, and a refusal storm is coalesced, not copied.
import type { EventEmitter } from 'node:events';
import { ErrorCode } from '@handoff/protocol';
import type { Backend } from '../backend.js';
import type { RouterContext } from '../router-context.js';
import type { EventJournal } from './journal.js';

const who = (b: Backend) => ({
  service: b.definition.name,
  version: b.definition.version,
  ...(b.pid === null ? {} : { pid: b.pid }),
});

/** Spawns, failed spawns and probes, readiness, exits (status or signal), restarts. */
export function journalRegistry(journal: EventJournal, registry: EventEmitter): void {
  registry.on('spawned', (b: Backend) =>
    journal.record({ kind: 'spawn', ...who(b), message: `spawned ${b.definition.command}` }),
  );
  registry.on('spawn-failed', (d: { name: string; version: string }, message: string) =>
    journal.record({ kind: 'spawn_failed', service: d.name, version: d.version, message }),
  );
  registry.on('probe-failed', (b: Backend, message: string) =>
    journal.record({ kind: 'probe_failed', ...who(b), message }),
  );
  registry.on('ready', (b: Backend) => journal.record({ kind: 'ready', ...who(b) }));
  registry.on('gone', (b: Backend, reason: string) => {
    const status = b.child?.exitCode ?? null;
    const signal = b.child?.signalCode ?? null;
    journal.record({
      kind: 'exit',
      ...who(b),
      ...(status === null ? {} : { status }),
      ...(signal === null ? {} : { signal }),
      message: reason,
    });
  });
  registry.on('promoted', (spare: Backend, old: Backend | undefined) =>
    journal.record({
      kind: 'restart',
      ...who(spare),
      code: 'promoted',
      message: old?.pid ? `replaces pid ${old.pid}` : 'replacement serving',
    }),
  );
}

/** Config reloads (ok or failed), upgrades, the start and end of serving. */
export function journalBroker(journal: EventJournal, broker: EventEmitter): void {
  broker.on(
    'config',
    (result: { services: readonly unknown[]; errors: readonly ConfigProblem[] }) => {
      const first = result.errors[0];
      journal.record({
        kind: 'config_reload',
        code: first === undefined ? 'ok' : 'failed',
        message:
          first === undefined
            ? `${result.services.length} service definition(s) loaded`
            : `${result.errors.length} problem(s), first: ${first.file}${first.field ? ` (${first.field})` : ''}: ${first.message}`,
      });
    },
  );
  broker.on('upgrading', () =>
    journal.record({ kind: 'upgrade', pid: process.pid, code: 'started' }),
  );
  broker.on('upgraded', (r: { oldPid: number; newPid: number }) =>
    journal.record({
      kind: 'upgrade',
      pid: r.newPid,
      code: 'committed',
      message: `pid ${r.oldPid} → ${r.newPid}`,
    }),
  );
  broker.on('upgrade-failed', (error: Error & { code?: unknown }) =>
    journal.record({
      kind: 'upgrade',
      pid: process.pid,
      code: typeof error.code === 'string' ? error.code : 'FAILED',
      message: error.message,
    }),
  );
  broker.on('closing', (deadlineMs: number) =>
    journal.record({
      kind: 'broker_stopping',
      pid: process.pid,
      message: `draining for up to ${deadlineMs} ms`,
    }),
  );
}

interface ConfigProblem {
  file: string;
  field?: string | undefined;
  message: string;
}

/** A refusal of one service and code is recorded at most this often; the rest are counted. */
export const REFUSAL_COALESCE_MS = 1000;

/** The router's observers, also recording refusals (by code) and handoff fallbacks. */
export function journalRouterObservers(
  journal: EventJournal,
  inner: Pick<RouterContext, 'observeHello' | 'observeHandoff'>,
): Pick<RouterContext, 'observeHello' | 'observeHandoff'> {
  const last = new Map<string, { at: number; suppressed: number }>();
  return {
    observeHello: (service, outcome, seconds, code?: ErrorCode) => {
      inner.observeHello(service, outcome, seconds, code);
      if (outcome === 'handoff' || outcome === 'reconnect') return;
      const name = refusalName(outcome, code);
      const key = `${service}\0${name}`;
      const now = Date.now();
      const seen = last.get(key);
      if (seen && now - seen.at < REFUSAL_COALESCE_MS) {
        seen.suppressed++;
        return;
      }
      if (last.size > 1024) last.clear();
      last.set(key, { at: now, suppressed: 0 });
      const more = seen?.suppressed ? ` (${seen.suppressed} more like it before)` : '';
      journal.record({
        kind: 'refused',
        ...(service === '' ? {} : { service }),
        code: name,
        message: `Hello ${outcome.replace('_', ' ')}${more}`,
      });
    },
    observeHandoff: (outcome, seconds) => {
      inner.observeHandoff(outcome, seconds);
      if (outcome === 'fallback')
        journal.record({
          kind: 'fallback',
          message: 'the daemon did not take a handoff; the client reconnects',
        });
    },
  };
}

/** The ErrorCode's name the client was told, else the router's outcome. */
function refusalName(outcome: string, code: ErrorCode | undefined): string {
  if (code !== undefined && code !== ErrorCode.UNSPECIFIED) return ErrorCode[code] ?? String(code);
  return outcome.toUpperCase();
}
