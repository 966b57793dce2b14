// Shared by every package's *.fuzz.test.ts: the checked-in corpora of
// captured traffic (hex JSON, read and rewritten with REGENERATE_CORPUS=1)
// and the trap that fails a test when anything escapes to the process.
// Test-only; the pure mutators are mutations.ts beside it (@handoff/testkit/mutations).
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { afterEach, beforeEach, expect } from 'vitest';
import { type CorpusFile, fromHex, toHex } from './mutations.js';

export function readCorpus(file: URL): Record<string, Uint8Array> {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as CorpusFile;
  return Object.fromEntries(Object.entries(parsed.entries).map(([k, v]) => [k, fromHex(v)]));
}

export function writeCorpus(file: URL, regenerate: string, entries: Record<string, Uint8Array>) {
  const out: CorpusFile = {
    regenerate,
    entries: Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, toHex(v)])),
  };
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
}

/**
 * Collects what escapes to the process during each test of the calling
 * suite (uncaught exceptions, unhandled rejections), and fails the test
 * unless it stayed empty. Returns the live list, for checks mid-property.
 */
export function trapUncaught(): unknown[] {
  const escaped: unknown[] = [];
  const onError = (error: unknown) => escaped.push(error);
  beforeEach(() => {
    escaped.length = 0;
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
  });
  afterEach(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    expect(escaped).toEqual([]);
  });
  return escaped;
}

/** One connection through a recording relay: every chunk, each direction. */
export interface RecordedSession {
  up: Buffer[];
  down: Buffer[];
}

/**
 * Listens on `listenPath` and relays each connection to `upstreamPath`,
 * recording both directions: how the capture helpers see what real
 * components write, without touching either end.
 */
export async function recordingRelay(
  listenPath: string,
  upstreamPath: string,
): Promise<{ sessions: RecordedSession[]; close(): void }> {
  const sessions: RecordedSession[] = [];
  const relay = createServer((client) => {
    const session: RecordedSession = { up: [], down: [] };
    sessions.push(session);
    const upstream = connect({ path: upstreamPath });
    client.on('data', (d: Buffer) => {
      session.up.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      session.down.push(d);
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('close', end);
      s.on('error', end);
    }
  });
  relay.listen(listenPath);
  await once(relay, 'listening');
  return { sessions, close: () => relay.close() };
}

/** Polls until `condition` holds (captures wait on bytes crossing the relay). */
export async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('corpus capture: condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
