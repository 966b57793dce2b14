// The instructions suite's client and knobs. The client is what each count
// is made over, so each of its modes must really complete its exchanges
// against a real server (the wire floor, the Hello floor, an echo) and exit 0, and a
// mode it does not know must fail loudly rather than count nothing. The
// knobs refuse a name they do not know.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BareHandoff, HelloFloor } from '../src/broker/bare-handoff.ts';
import { namedIn } from '../src/broker/instructions-suite.ts';
import { type Floors, fromSource, startFloors } from './floors.ts';

const client = join(import.meta.dirname, '../src/broker/instructions-client.mjs');
let dir: string;
let floors: Floors | undefined;
let floor: BareHandoff;
let helloFloor: HelloFloor;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'instructions-client-'));
  floors = await startFloors(dir);
  ({ floor, helloFloor } = floors);
});
afterAll(async () => {
  await floors?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the client to its end (no go-file): its exit code and what it printed. */
async function run(mode: string, path: string, warmup: number, connects: number) {
  const child = spawn(
    process.execPath,
    [...fromSource, client, mode, path, String(warmup), String(connects)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d;
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out, err };
}

describe('instructions-client.mjs', () => {
  it('hello: completes Hellos against the Hello floor, warm-up and counted ones', async () => {
    const r = await run('hello', helloFloor.path, 5, 20);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe('warm\ndone\n');
  });

  it('wire: completes handoffs through the wire floor, with 4 in flight', async () => {
    process.env.BENCH_INSTRUCTIONS_LOOPS = '4';
    try {
      const r = await run('wire', floor.brokerPath, 4, 16);
      expect(r.code).toBe(0);
      expect(r.out).toBe('warm\ndone\n');
    } finally {
      delete process.env.BENCH_INSTRUCTIONS_LOOPS;
    }
  });

  it('connect-plain, connect-bare: bare connects to an echo, each way of making the options', async () => {
    const path = join(dir, 'echo.sock');
    const echo = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(path, resolve));
    try {
      for (const mode of ['connect-plain', 'connect-bare']) {
        const r = await run(mode, path, 5, 20);
        expect(r.err).toBe('');
        expect(r.code).toBe(0);
        expect(r.out).toBe('warm\ndone\n');
      }
    } finally {
      await new Promise((resolve) => echo.close(resolve));
    }
  });

  it('hello against a server that closes without answering: fails, never counts', async () => {
    const path = join(dir, 'closes.sock');
    const closes = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => closes.listen(path, resolve));
    try {
      const r = await run('hello', path, 0, 1);
      expect(r.code).not.toBe(0);
      expect(r.out).not.toContain('done');
    } finally {
      await new Promise((resolve) => closes.close(resolve));
    }
  });

  it('refuses a mode it does not know', async () => {
    const r = await run('nonsense', helloFloor.path, 0, 1);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('no mode nonsense');
  });
});

describe('namedIn (BENCH_INSTRUCTIONS_CASES, BENCH_INSTRUCTIONS_ROLES)', () => {
  const all = ['client', 'broker', 'daemon'] as const;
  it('is everything when unset, and the names given in declaration order', () => {
    expect(namedIn('K', all, undefined)).toEqual(all);
    expect(namedIn('K', all, 'daemon,client')).toEqual(['client', 'daemon']);
  });
  it('refuses an unknown name and an empty list, naming the knob and the choices', () => {
    expect(() => namedIn('K', all, 'client,brokr')).toThrow(
      'K: name some of client, broker, daemon; got "client,brokr"',
    );
    expect(() => namedIn('K', all, ',')).toThrow('K: name some of');
  });
});
