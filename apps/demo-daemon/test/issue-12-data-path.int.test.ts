// Issue 12 against the demo daemon as it runs for real (daemon-main in its
// own process): clients that never read their answers must not grow its
// memory past the per-connection bound, and a request that cannot be
// answered fails alone. Memory is read from /proc/<pid>/status: VmHWM (the
// peak RSS, reset through clear_refs before each measure) and VmRSS.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { encodeFramed, FrameDecoder, MAX_FRAME_BYTES, requestFrame } from '@handoff/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DemoKvClient } from '../src/client.js';
import { decodeResponse, encodeRequest, KV_PAYLOAD_PROTOCOL } from '../src/kv-protocol.js';
import { DEFAULT_MAX_LINE_BYTES } from '../src/line-protocol.js';
import { alive, app, childPids, LineClient, openFds, tempDir, tsxArgs } from './harness.js';

const tmp = tempDir('issue-12');
const cleanups: (() => Promise<void> | void)[] = [];
let n = 0;
let baseline: { fds: number; children: number[] };

beforeAll(() => {
  baseline = { fds: openFds(), children: childPids() };
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => tmp.remove());

const MiB = 1024 * 1024;
const mib = (bytes: number) => (bytes / MiB).toFixed(1);
/** The daemon's default high-water mark of a connection's unsent answers (both wires). */
const MARK = MiB;
/** Each stored value is 1 MiB of one letter: a GET's answer needs no escaping on the line wire. */
const VALUE_BYTES = MiB;
const KEYS = 10;
const keyOf = (i: number) => `v${i % KEYS}`;
const letterOf = (i: number) => 0x61 + (i % KEYS);
/**
 * What one slow connection may hold in the daemon: answers queued up to the
 * mark, plus the one that crossed it, plus its input buffer (one read and an
 * unfinished line).
 */
const PER_CONNECTION = MARK + VALUE_BYTES + 64 * 1024 + DEFAULT_MAX_LINE_BYTES;
/** The heap's own slack: garbage not yet collected, code run for the first time. */
const SLACK = 24 * MiB;
/** Past this, the daemon is killed rather than let it take the machine (the bug would). */
const CEILING = 1024 * MiB;

interface RunningDaemon {
  child: ChildProcess;
  pid: number;
  endpoint: string;
}

/** daemon-main in its own process, resolved once it logged "listening". */
async function startDaemon(): Promise<RunningDaemon> {
  const endpoint = tmp.path(`kv${++n}.sock`);
  const child = spawn(
    process.execPath,
    [...tsxArgs, join(app, 'src', 'daemon-main.ts'), '--endpoint', endpoint],
    {
      cwd: app,
      env: { ...process.env, HANDOFF_ENDPOINT: '', HANDOFF_BROKER_CONTROL: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = once(child, 'exit');
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk;
      if (log.includes('"msg":"listening"')) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`daemon exited ${code} before listening:\n${log}`)),
    );
  });
  return { child, pid: child.pid!, endpoint };
}

/** A size from /proc/<pid>/status, in bytes; undefined once the process is gone (a zombie has none). */
function status(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/**
 * Starts measuring: resets the peak (VmHWM) to the current RSS, and kills the
 * daemon if it ever grows past CEILING. `growth()` is the peak since then.
 */
function measure(d: RunningDaemon) {
  writeFileSync(`/proc/${d.pid}/clear_refs`, '5');
  const start = status(d.pid, 'VmRSS')!;
  const watchdog = setInterval(() => {
    const rss = status(d.pid, 'VmRSS');
    if (rss === undefined) clearInterval(watchdog);
    else if (rss - start > CEILING) d.child.kill('SIGKILL');
  }, 10);
  cleanups.push(() => clearInterval(watchdog));
  return {
    growth(): number {
      const peak = status(d.pid, 'VmHWM');
      expect(peak, 'the daemon is gone (killed past the memory ceiling?)').toBeDefined();
      return peak! - start;
    },
  };
}

async function rawSocket(path: string): Promise<Socket> {
  const socket = connect(path);
  await once(socket, 'connect');
  socket.on('error', () => {});
  cleanups.push(() => void socket.destroy());
  return socket;
}

/** A client that sends everything at once and does not read: the kernel stops taking answers. */
async function slowReader(path: string, requests: Uint8Array): Promise<Socket> {
  const socket = await rawSocket(path);
  socket.pause();
  // Written once the callback runs: in the daemon's receive queue, accepted or not.
  await new Promise<void>((resolve, reject) =>
    socket.write(requests, (error) => (error ? reject(error) : resolve())),
  );
  return socket;
}

/** Reads `count` answer lines off a socket, checking each. */
function readLines(socket: Socket, count: number, check: (line: Buffer, i: number) => void) {
  return new Promise<void>((resolve, reject) => {
    let pending: Buffer[] = [];
    let i = 0;
    socket.on('close', () => reject(new Error(`closed after ${i} of ${count} answers`)));
    socket.on('data', (chunk: Buffer) => {
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
        pending.push(chunk.subarray(from, nl));
        try {
          check(Buffer.concat(pending), i++);
        } catch (error) {
          reject(error);
        }
        pending = [];
        from = nl + 1;
      }
      if (from < chunk.length) pending.push(chunk.subarray(from));
      if (i === count) resolve();
    });
    socket.resume();
  });
}

function checkValueLine(line: Buffer, i: number): void {
  const prefix = Buffer.from('VALUE ');
  if (
    line.length !== prefix.length + VALUE_BYTES ||
    !line.subarray(0, prefix.length).equals(prefix) ||
    line[prefix.length] !== letterOf(i) ||
    line.at(-1) !== letterOf(i)
  ) {
    throw new Error(`answer ${i} is not VALUE ${String.fromCharCode(letterOf(i))}…`);
  }
}

/** Reads `count` RESPONSE frames, checking they answer requests 0, 1, 2, … with the right values. */
function readFrames(socket: Socket, count: number) {
  return new Promise<void>((resolve, reject) => {
    const decoder = new FrameDecoder();
    let i = 0;
    socket.on('close', () => reject(new Error(`closed after ${i} of ${count} answers`)));
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const reply = decodeResponse(frame.payload);
        if (
          frame.requestId !== BigInt(i) ||
          reply.result !== 'found' ||
          reply.value.length !== VALUE_BYTES ||
          reply.value[0] !== letterOf(i)
        ) {
          reject(new Error(`answer ${i} is request ${frame.requestId}, ${reply.result}`));
        }
        i++;
      }
      if (i === count) resolve();
    });
    socket.resume();
  });
}

const lineGets = (count: number) =>
  Buffer.from(Array.from({ length: count }, (_, i) => `GET ${keyOf(i)}\n`).join(''));

function framedGet(i: number, extra: { tracestate?: string } = {}): Uint8Array {
  return encodeFramed(
    requestFrame({
      payloadProtocol: KV_PAYLOAD_PROTOCOL.id,
      requestId: BigInt(i),
      payload: encodeRequest({ op: 'get', key: Buffer.from(keyOf(i)), waitMs: 0 }),
      ...extra,
    }),
  );
}
const framedGets = (count: number) =>
  Buffer.concat(Array.from({ length: count }, (_, i) => framedGet(i)));

/** A daemon holding KEYS values of 1 MiB, each answered once on both wires (first-use costs paid). */
async function loadedDaemon() {
  const d = await startDaemon();
  const kv = await DemoKvClient.connectDirect(d.endpoint);
  cleanups.push(() => kv.close());
  for (let i = 0; i < KEYS; i++) await kv.set(keyOf(i), Buffer.alloc(VALUE_BYTES, letterOf(i)));
  const line = await LineClient.connect(d.endpoint);
  cleanups.push(() => line.close());
  for (let i = 0; i < KEYS; i++) expect((await line.ask(`GET ${keyOf(i)}`))?.length).toBe(6 + MiB);
  for (let i = 0; i < KEYS; i++) expect((await kv.get(keyOf(i)))?.value.length).toBe(MiB);
  return { ...d, kv, line };
}

/**
 * Waits until the daemon has accepted `connections` and then read what they
 * sent: each new connection is readable by the loop turn after its accept,
 * and every loop turn serves all readable sockets, so two STATS round trips
 * after it was counted come after its requests were read and answered as
 * far as the daemon will go. `check` runs first on every try: a daemon
 * that blows its bound fails the test on that, not on slowness.
 */
async function settled(line: LineClient, connections: number, check: () => void): Promise<void> {
  await vi.waitFor(
    async () => {
      check();
      const open = Number(/ connections=(\d+) /.exec((await line.ask('STATS')) ?? '')?.[1]);
      expect(open).toBeGreaterThanOrEqual(connections);
    },
    { timeout: 30_000, interval: 50 },
  );
  await line.ask('STATS');
  await line.ask('STATS');
  check();
}

const statsHits = async (line: LineClient) =>
  Number(/ hits=(\d+) /.exec((await line.ask('STATS')) ?? '')?.[1]);

describe('issue 12 case 3: a client that does not read its answers costs bounded memory', () => {
  for (const wire of ['line', 'framed'] as const) {
    const requests = wire === 'line' ? lineGets : framedGets;
    const read = (socket: Socket, count: number) =>
      wire === 'line' ? readLines(socket, count, checkValueLine) : readFrames(socket, count);

    it(`${wire} wire: one slow reader, 200 pipelined GETs of 1 MiB`, async () => {
      const d = await loadedDaemon();
      const before = await statsHits(d.line);
      const memory = measure(d);
      const slow = await slowReader(d.endpoint, requests(200));
      await settled(d.line, 3, () => expect(memory.growth()).toBeLessThan(PER_CONNECTION + SLACK));
      console.log(`${wire} wire, one slow reader: VmHWM +${mib(memory.growth())} MiB`);
      // Everyone else is served meanwhile.
      expect((await d.kv.get(keyOf(3)))?.value[0]).toBe(letterOf(3));
      // And the slow reader loses nothing: every answer, in order.
      await read(slow, 200);
      expect(await statsHits(d.line)).toBe(before + 201);
    });

    it(`${wire} wire: 50 slow readers, 20 pipelined GETs of 1 MiB each`, async () => {
      const d = await loadedDaemon();
      const before = await statsHits(d.line);
      const memory = measure(d);
      const slow: Socket[] = [];
      for (let c = 0; c < 50; c++) slow.push(await slowReader(d.endpoint, requests(20)));
      await settled(d.line, 52, () =>
        expect(memory.growth()).toBeLessThan(50 * PER_CONNECTION + SLACK),
      );
      console.log(`${wire} wire, 50 slow readers: VmHWM +${mib(memory.growth())} MiB`);
      expect((await d.kv.get(keyOf(4)))?.value[0]).toBe(letterOf(4));
      await Promise.all(slow.map((socket) => read(socket, 20)));
      expect(await statsHits(d.line)).toBe(before + 50 * 20 + 1);
    });
  }
});

describe('issue 12 case 2: a request that cannot be answered fails alone', () => {
  it('a framed GET whose answer would not fit a frame gets TOO_LARGE, and its connection goes on', async () => {
    const d = await loadedDaemon();
    const client = await rawSocket(d.endpoint);
    // The response echoes the request's trace context: 15.5 MiB of it
    // plus the 1 MiB value is over the 16 MiB frame cap.
    client.write(framedGet(0, { tracestate: 'x'.repeat(MAX_FRAME_BYTES - VALUE_BYTES / 2) }));
    client.write(framedGet(1));
    const decoder = new FrameDecoder();
    const frames: ReturnType<FrameDecoder['push']> = [];
    client.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
    await vi.waitFor(() => expect(frames).toHaveLength(2), { timeout: 30_000 });
    expect(frames[0]!.requestId).toBe(0n);
    expect(decodeResponse(frames[0]!.payload)).toMatchObject({
      result: 'failure',
      code: 'TOO_LARGE',
    });
    expect(frames[1]!.requestId).toBe(1n);
    expect(decodeResponse(frames[1]!.payload)).toMatchObject({ result: 'found' });
    // The other clients, and the daemon, never noticed.
    expect((await d.kv.get(keyOf(2)))?.value[0]).toBe(letterOf(2));
    expect(await d.line.ask('DEL nothing')).toBe('NOT_FOUND');
    expect(alive(d.pid)).toBe(true);
  });

  it('a frame whose trace context alone leaves no room for any answer ends only its connection', async () => {
    const d = await loadedDaemon();
    const client = await rawSocket(d.endpoint);
    const closed = once(client, 'close');
    client.resume();
    client.write(framedGet(0, { tracestate: 'x'.repeat(MAX_FRAME_BYTES - 64) }));
    await closed;
    expect((await d.kv.get(keyOf(2)))?.value[0]).toBe(letterOf(2));
    expect(await d.line.ask('DEL nothing')).toBe('NOT_FOUND');
    expect(alive(d.pid)).toBe(true);
  });

  it('an over-long line ends only its connection', async () => {
    const d = await loadedDaemon();
    const client = await LineClient.connect(d.endpoint);
    cleanups.push(() => client.close());
    client.send(`SET k ${'x'.repeat(DEFAULT_MAX_LINE_BYTES)}\n`);
    expect(await client.line()).toMatch(/^ERROR LINE_TOO_LONG /);
    await client.closed;
    expect((await d.kv.get(keyOf(2)))?.value[0]).toBe(letterOf(2));
    expect(await d.line.ask('GET nothing')).toBe('NOT_FOUND');
    expect(alive(d.pid)).toBe(true);
  });
});

describe('after all of the above', () => {
  it('no fd and no child process is left behind', async () => {
    await vi.waitFor(
      () => {
        expect(childPids()).toEqual(baseline.children);
        expect(openFds()).toBe(baseline.fds);
      },
      { timeout: 10_000 },
    );
  });
});
