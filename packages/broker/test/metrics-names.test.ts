// Pins the broker's OpenMetrics names, types and label sets against a
// golden list (metrics-golden.ts), read back with the parser top uses — so a
// rename or a changed label set is a visible change to this test.
import { ErrorCode } from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import type { ServiceDefinition } from '../src/config/definition.js';
import { createBrokerMetrics, createMetricsRegistry } from '../src/metrics.js';
import { parseOpenMetrics } from '../src/openmetrics-parse.js';
import { refusalCodeLabel, refusalLabelFor } from '../src/refusal-label.js';
import {
  OTHER_SERVICES_LABEL,
  routerObservers,
  UNDEFINED_NAMES_KEPT,
} from '../src/router-context.js';
import { BROKER_METRICS_GOLDEN, describeFamilies } from './metrics-golden.js';

describe('broker metric names (golden)', () => {
  it('every family, type, sample name and label set is the pinned one', () => {
    const r = createMetricsRegistry();
    const m = createBrokerMetrics(r);
    // One sample in every series, so each family shows its labels.
    const observe = routerObservers(m, () => []);
    observe.observeHello('demo-kv', 'handoff', 0.0001);
    observe.observeHello('demo-kv', 'refused', 0.0001, ErrorCode.VERSION_UNSUPPORTED);
    observe.observeHandoff('accepted', 0.0002);
    m.activeBackends.set(1);
    m.spawnAttemptsTotal.inc({ service: 'demo-kv', outcome: 'ok' });
    m.connectionsOpen.set(1);
    m.endpointCacheSessionsTotal.inc({ service: 'demo-kv' });
    const parsed = parseOpenMetrics(r.render());
    expect(describeFamilies(parsed.families.values())).toEqual(BROKER_METRICS_GOLDEN);
  });

  it('counts refusals by the code the client was told, or the one its outcome implies', () => {
    const r = createMetricsRegistry();
    const observe = routerObservers(createBrokerMetrics(r), () => []);
    observe.observeHello('a', 'refused', 0, ErrorCode.SERVICE_UNKNOWN);
    observe.observeHello('a', 'refused', 0, ErrorCode.SERVICE_UNKNOWN);
    observe.observeHello('a', 'rate_limited', 0);
    observe.observeHello('', 'rejected', 0);
    observe.observeHello('', 'fd_pressure', 0);
    observe.observeHello('b', 'spawn_failed', 0, ErrorCode.BACKEND_SPAWN_FAILED);
    observe.observeHello('b', 'reconnect', 0);
    observe.observeHello('b', 'handoff', 0);
    const refused = parseOpenMetrics(r.render())
      .families.get('hello_refused')
      ?.samples.map((s) => `${s.labels.service}/${s.labels.code}=${s.value}`);
    expect(refused).toEqual([
      'a/SERVICE_UNKNOWN=2',
      'a/RATE_LIMITED=1',
      '/PEER_REJECTED=1',
      '/FD_PRESSURE=1',
      'b/BACKEND_SPAWN_FAILED=1',
    ]);
  });

  it('keeps the series of refused Hellos bounded whatever names clients ask for', () => {
    const r = createMetricsRegistry();
    let definitions = [{ name: 'kv' } as ServiceDefinition];
    const observe = routerObservers(createBrokerMetrics(r), () => definitions);
    for (let i = 0; i < 1000; i++)
      observe.observeHello(`nope-${i}`, 'refused', 0, ErrorCode.SERVICE_UNKNOWN);
    // A defined name refused after the undefined ones filled their share keeps its own.
    observe.observeHello('kv', 'refused', 0, ErrorCode.VERSION_BLOCKED);
    observe.observeHello('', 'rejected', 0);
    // A name defined later (a reload) is its own series from then on.
    definitions = [...definitions, { name: 'late' } as ServiceDefinition];
    observe.observeHello('late', 'refused', 0, ErrorCode.VERSION_BLOCKED);
    const families = parseOpenMetrics(r.render()).families;
    const services = (family: string) =>
      new Set(families.get(family)?.samples.map((s) => s.labels.service));
    const expected = new Set([
      ...Array.from({ length: UNDEFINED_NAMES_KEPT }, (_, i) => `nope-${i}`),
      OTHER_SERVICES_LABEL,
      'kv',
      '',
      'late',
    ]);
    expect(services('hello')).toEqual(expected);
    expect(services('hello_refused')).toEqual(expected);
    expect(services('hello_duration_seconds')).toEqual(expected);
    const other = families
      .get('hello_refused')
      ?.samples.find((s) => s.labels.service === OTHER_SERVICES_LABEL);
    expect(other?.value).toBe(1000 - UNDEFINED_NAMES_KEPT);
  });

  it('names codes as the protocol does, and numbers it does not know', () => {
    expect(refusalCodeLabel(ErrorCode.RATE_LIMITED)).toBe('RATE_LIMITED');
    expect(refusalCodeLabel(77 as ErrorCode)).toBe('CODE_77');
    expect(refusalLabelFor('handoff')).toBeUndefined();
    expect(refusalLabelFor('something_new')).toBe('UNSPECIFIED');
    expect(refusalLabelFor('constructor')).toBe('UNSPECIFIED');
  });
});
