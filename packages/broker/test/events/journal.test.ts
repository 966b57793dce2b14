// The event journal on real files: what it writes reads back; rotation
// keeps it within maxBytes × files; the ring is bounded; a failing disk
// (/dev/full, an unwritable directory) drops and counts events, never
// throws; garbled and hostile lines are skipped by the reader; --since.
import {
  appendFileSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { decodeEvent, eventsFilePath } from '../../src/events/event.js';
import { EventJournal } from '../../src/events/journal.js';
import { EventsError, followEvents, parseSince, readEvents } from '../../src/events/reader.js';
import { openFds, tempDir } from '../harness.js';

const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => {
  for (const d of dirs) d.remove();
});
function stateDir(): string {
  const d = tempDir('journal');
  dirs.push(d);
  return d.dir;
}

describe('EventJournal', () => {
  it('appends JSON lines that read back in order, and keeps the last ones in memory', async () => {
    const dir = stateDir();
    const fdsBefore = openFds();
    const journal = new EventJournal({ stateDir: dir, ringSize: 3 });
    for (let i = 0; i < 5; i++)
      journal.record({ kind: 'spawn', service: 'kv', version: '1.0.0', pid: 100 + i });
    journal.record({ kind: 'exit', service: 'kv', pid: 104, signal: 'SIGKILL', message: 'gone' });
    await journal.close();
    expect(openFds()).toBe(fdsBefore);
    const lines = readFileSync(eventsFilePath(dir), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    expect(decodeEvent(lines[5]!)).toEqual({
      t: expect.any(Number),
      kind: 'exit',
      service: 'kv',
      pid: 104,
      signal: 'SIGKILL',
      message: 'gone',
    });
    // The ring: bounded, oldest first, and filterable by service.
    expect(journal.recent().map((e) => e.pid)).toEqual([103, 104, 104]);
    expect(journal.recent(1, 'kv')[0]?.kind).toBe('exit');
    expect(journal.recent(5, 'other')).toEqual([]);
    const { events } = await readEvents(dir, { service: 'kv' }, 2);
    expect(events.map((e) => e.kind)).toEqual(['spawn', 'exit']);
  });

  it('rotates by size and never keeps more than maxBytes × files on disk', async () => {
    const dir = stateDir();
    const journal = new EventJournal({ stateDir: dir, maxBytes: 2000, files: 2 });
    for (let i = 0; i < 400; i++) {
      journal.record({ kind: 'refused', service: 'kv', code: 'SERVICE_UNKNOWN', message: `n${i}` });
      if (i % 50 === 0) await journal.idle();
    }
    await journal.close();
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['events.jsonl', 'events.jsonl.1']);
    for (const f of files) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(2000);
    // The newest events survive, the oldest were rotated away, in order.
    const { events } = await readEvents(dir, {}, 1000);
    expect(events.at(-1)?.message).toBe('n399');
    expect(events.length).toBeLessThan(400);
    const numbers = events.map((e) => Number(e.message?.slice(1)));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(journal.stats()).toEqual({ path: eventsFilePath(dir), dropped: 0, failing: null });
  });

  it('with files: 1 truncates instead of keeping a rotated file', async () => {
    const dir = stateDir();
    const journal = new EventJournal({ stateDir: dir, maxBytes: 500, files: 1 });
    for (let i = 0; i < 50; i++) {
      journal.record({ kind: 'ready', service: 'kv', pid: i });
      await journal.idle();
    }
    await journal.close();
    expect(readdirSync(dir)).toEqual(['events.jsonl']);
    expect(statSync(eventsFilePath(dir)).size).toBeLessThanOrEqual(500);
  });

  it('on a full disk drops and counts events without throwing, and keeps them in memory', async () => {
    const dir = stateDir();
    symlinkSync('/dev/full', eventsFilePath(dir));
    const troubles: string[] = [];
    const journal = new EventJournal({
      stateDir: dir,
      onTrouble: (level, message, fields) => troubles.push(`${level} ${message} ${fields.code}`),
    });
    for (let i = 0; i < 3; i++) journal.record({ kind: 'spawn', service: 'kv', pid: i });
    await journal.idle();
    journal.record({ kind: 'spawn', service: 'kv', pid: 3 });
    await journal.close();
    expect(journal.stats().dropped).toBe(4);
    expect(journal.stats().failing).toBe('ENOSPC');
    // Reported once per episode, not once per event.
    expect(troubles).toEqual([
      'warn event journal write failed; events are dropped until it recovers ENOSPC',
    ]);
    expect(journal.recent().map((e) => e.pid)).toEqual([0, 1, 2, 3]);
  });

  it('cannot open its file (the state dir is under a file): drops and counts, never throws', async () => {
    const file = join(stateDir(), 'a-file');
    writeFileSync(file, '');
    const journal = new EventJournal({ stateDir: join(file, 'state') });
    expect(() => journal.record({ kind: 'spawn', service: 'kv' })).not.toThrow();
    await journal.close();
    expect(journal.stats()).toMatchObject({ dropped: 1, failing: 'ENOTDIR' });
    expect(journal.recent()).toHaveLength(1);
  });

  it('without a state dir keeps events in memory only', async () => {
    const journal = new EventJournal();
    journal.record({ kind: 'config_reload', code: 'ok' });
    await journal.close();
    expect(journal.path).toBeNull();
    expect(journal.recent()).toEqual([
      { t: expect.any(Number), kind: 'config_reload', code: 'ok' },
    ]);
  });
});

describe('reading the journal', () => {
  it('skips garbled, torn and hostile lines instead of failing', async () => {
    const dir = stateDir();
    const path = eventsFilePath(dir);
    const good = (n: number) =>
      `${JSON.stringify({ t: 1000 + n, kind: 'spawn', service: 'kv', pid: n })}\n`;
    appendFileSync(
      path,
      [
        good(1),
        'not json at all\n',
        '{"t":"yesterday","kind":"spawn"}\n',
        '{"t":5,"kind":"no-such-kind"}\n',
        '{"t":5,"kind":"exit","pid":"1; rm -rf /"}\n',
        '[1,2,3]\n',
        'null\n',
        '\u0000\u0001\u00ff\n',
        `{"t":6,"kind":"exit","__proto__":{"polluted":true},"service":"kv"}\n`,
        good(2),
        '{"t":7,"kind":"spa', // torn: a write in progress
      ].join(''),
    );
    const { events } = await readEvents(dir, {}, 100);
    expect(events).toEqual([
      { t: 1001, kind: 'spawn', service: 'kv', pid: 1 },
      { t: 6, kind: 'exit', service: 'kv' },
      { t: 1002, kind: 'spawn', service: 'kv', pid: 2 },
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('filters by --since and service, and says when there is no journal', async () => {
    const dir = stateDir();
    const now = Date.now();
    appendFileSync(
      eventsFilePath(dir),
      [
        { t: now - 3 * 3600_000, kind: 'spawn', service: 'a' },
        { t: now - 30 * 60_000, kind: 'spawn', service: 'b' },
        { t: now - 60_000, kind: 'exit', service: 'a', status: 1 },
      ]
        .map((e) => `${JSON.stringify(e)}\n`)
        .join(''),
    );
    const since = (s: string) => readEvents(dir, { sinceMs: parseSince(s, now) }, 10);
    expect((await since('2h')).events.map((e) => e.service)).toEqual(['b', 'a']);
    expect((await since('5m')).events.map((e) => e.kind)).toEqual(['exit']);
    const iso = new Date(now - 45 * 60_000).toISOString();
    expect((await since(iso)).events).toHaveLength(2);
    expect((await readEvents(dir, { service: 'a' }, 10)).events).toHaveLength(2);
    expect(() => parseSince('yesterday')).toThrow(EventsError);
    expect(() => parseSince('10 minutes')).toThrow(/--since takes a duration/);
    await expect(readEvents(stateDir(), {}, 10)).rejects.toMatchObject({ code: 'NO_EVENTS' });
  });
});

describe('following the journal', () => {
  it('reads every event once, however many rotations happened since the read or between polls', async () => {
    const dir = stateDir();
    const journal = new EventJournal({ stateDir: dir, maxBytes: 200, files: 6 });
    const fdsBefore = openFds();
    journal.record({ kind: 'spawn', message: 'read' });
    await journal.idle();
    const { position } = await readEvents(dir, {}, 10);
    // Rotated more than once after the read and before following began...
    for (let i = 0; i < 12; i++) journal.record({ kind: 'ready', message: `a${i}` });
    await journal.idle();
    expect(readdirSync(dir).length).toBeGreaterThanOrEqual(3);
    const seen: string[] = [];
    const stop = new AbortController();
    const following = followEvents(
      dir,
      {},
      (e) => seen.push(e.message ?? ''),
      stop.signal,
      position,
      50,
    );
    await vi.waitFor(() => expect(seen).toHaveLength(12), { timeout: 10_000 });
    // ...and while following, in one burst.
    for (let i = 0; i < 12; i++) journal.record({ kind: 'ready', message: `b${i}` });
    await journal.idle();
    await vi.waitFor(() => expect(seen).toHaveLength(24), { timeout: 10_000 });
    stop.abort();
    await following;
    await journal.close();
    expect(seen).toEqual([
      ...Array.from({ length: 12 }, (_, i) => `a${i}`),
      ...Array.from({ length: 12 }, (_, i) => `b${i}`),
    ]);
    expect(openFds()).toBe(fdsBefore);
  });
});
