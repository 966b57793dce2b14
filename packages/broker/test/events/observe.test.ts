// What the journal makes of the broker's events that the integration tests
// cannot cheaply cause (an upgrade's start, commit and failure), and how a
// storm of refusals is coalesced: the broker's documented events emitted on
// an EventEmitter, the router's observers called as the router calls them.
import { EventEmitter } from 'node:events';
import { ErrorCode } from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import { EventJournal } from '../../src/events/journal.js';
import {
  journalBroker,
  journalRouterObservers,
  REFUSAL_COALESCE_MS,
} from '../../src/events/observe.js';

describe('journalBroker', () => {
  it('records an upgrade started, committed and failed, and the drain', () => {
    const journal = new EventJournal();
    const broker = new EventEmitter();
    journalBroker(journal, broker);
    broker.emit('upgrading');
    broker.emit('upgraded', { oldPid: 10, newPid: 20, switchMs: 1, totalMs: 2 });
    broker.emit(
      'upgrade-failed',
      Object.assign(new Error('successor exited'), { code: 'SUCCESSOR_EXITED' }),
    );
    broker.emit('closing', 500);
    expect(journal.recent().map(({ t: _t, ...e }) => e)).toEqual([
      { kind: 'upgrade', pid: process.pid, code: 'started' },
      { kind: 'upgrade', pid: 20, code: 'committed', message: 'pid 10 → 20' },
      { kind: 'upgrade', pid: process.pid, code: 'SUCCESSOR_EXITED', message: 'successor exited' },
      { kind: 'broker_stopping', pid: process.pid, message: 'draining for up to 500 ms' },
    ]);
  });
});

describe('journalRouterObservers', () => {
  it('records each refusal by code, coalesces a storm per service and code, and still counts', () => {
    const journal = new EventJournal();
    const counted: string[] = [];
    const observers = journalRouterObservers(journal, {
      observeHello: (service, outcome) => counted.push(`${service}:${outcome}`),
      observeHandoff: (outcome) => counted.push(outcome),
    });
    for (let i = 0; i < 100; i++)
      observers.observeHello('', 'rate_limited', 0, ErrorCode.RATE_LIMITED);
    observers.observeHello('kv', 'refused', 0, ErrorCode.VERSION_BLOCKED);
    observers.observeHello('kv', 'handoff', 0);
    observers.observeHandoff('fallback', 0);
    observers.observeHandoff('accepted', 0);
    expect(counted).toHaveLength(104);
    expect(journal.recent().map(({ t: _t, ...e }) => e)).toEqual([
      { kind: 'refused', code: 'RATE_LIMITED', message: 'Hello rate limited' },
      { kind: 'refused', service: 'kv', code: 'VERSION_BLOCKED', message: 'Hello refused' },
      { kind: 'fallback', message: 'the daemon did not take a handoff; the client reconnects' },
    ]);
    expect(REFUSAL_COALESCE_MS).toBe(1000);
  });
});
