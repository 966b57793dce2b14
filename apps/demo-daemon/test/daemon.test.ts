// startDemoDaemon in this process, on real Unix sockets: both wires, hostile
// input on each, probes, the sidecar, close() draining, the idle timeout,
// and no fd left behind.

import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { FrameClient, probeDaemon } from '@handoff/backend-sdk';
import {
  encodeFramed,
  FrameDecoder,
  MAX_FRAME_BYTES,
  PayloadEncoding,
  requestFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { DemoKvClient, DemoKvError } from '../src/client.js';
import { type DemoDaemon, MAX_ANSWERABLE_VALUE_BYTES } from '../src/daemon.js';
import { decodeResponse, encodeRequest, KV_PAYLOAD_PROTOCOL } from '../src/kv-protocol.js';
import type { KvReply } from '../src/kv-service.js';
import { LineClient, openFds, startTestDaemon, str, tempDir, text } from './harness.js';

const tmp = tempDir('demo-daemon');
let n = 0;
const daemons: DemoDaemon[] = [];
const closers: (() => void)[] = [];

async function daemon(options: Parameters<typeof startTestDaemon>[1] = {}) {
  const d = await startTestDaemon(tmp.path(`kv${++n}.sock`), options);
  daemons.push(d);
  return d;
}

async function lineClient(d: DemoDaemon) {
  const client = await LineClient.connect(d.endpoint);
  closers.push(() => client.close());
  return client;
}

async function kvClient(d: DemoDaemon) {
  const client = await DemoKvClient.connectDirect(d.endpoint);
  closers.push(() => client.close());
  return client;
}

async function frameClient(d: DemoDaemon) {
  const client = await FrameClient.connect(d.endpoint);
  closers.push(() => client.close());
  return client;
}

/** Sends a raw payload on the framed wire and decodes the daemon's answer. */
async function rawRequest(client: FrameClient, payload: Uint8Array): Promise<KvReply> {
  return decodeResponse((await client.request(KV_PAYLOAD_PROTOCOL.id, payload)).payload);
}

afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await Promise.all(daemons.splice(0).map((d) => d.close()));
});
afterAll(() => tmp.remove());

describe('the line wire', () => {
  it('answers SET, GET, DEL and STATS', async () => {
    const d = await daemon();
    const c = await lineClient(d);
    expect(await c.ask('SET greeting hello%20world')).toBe('STORED');
    expect(await c.ask('get greeting')).toBe('VALUE hello%20world');
    expect(await c.ask('GET nobody')).toBe('NOT_FOUND');
    expect(await c.ask('DEL greeting')).toBe('DELETED');
    expect(await c.ask('DEL greeting')).toBe('NOT_FOUND');
    expect(await c.ask('STATS')).toMatch(
      /^STATS entries=0 bytes=0 .* hits=1 misses=1 sets=1 deletes=1 .* connections=1 handoffs=0 uptime_ms=\d+ waiting=0$/,
    );
  });

  it('expires a key set with a TTL', async () => {
    const d = await daemon();
    const c = await lineClient(d);
    expect(await c.ask('SET short-lived v 40')).toBe('STORED');
    expect(await c.ask('GET short-lived')).toBe('VALUE v');
    await vi.waitFor(async () => expect(await c.ask('GET short-lived')).toBe('NOT_FOUND'));
  });

  it('answers a malformed line with an ERROR line and goes on serving', async () => {
    const d = await daemon();
    const c = await lineClient(d);
    expect(await c.ask('FLUSHALL')).toMatch(/^ERROR UNKNOWN_COMMAND /);
    expect(await c.ask('SET onlykey')).toMatch(/^ERROR WRONG_ARGUMENTS /);
    expect(await c.ask('SET k v soon')).toMatch(/^ERROR BAD_NUMBER /);
    expect(await c.ask('GET 100%')).toMatch(/^ERROR BAD_ESCAPE /);
    expect(await c.ask(`GET ${'k'.repeat(251)}`)).toMatch(/^ERROR INVALID_KEY /);
    expect(await c.ask('SET k %00')).toBe('STORED');
    expect(await c.ask('GET k')).toBe('VALUE %00');
  });

  it('answers an over-long line with LINE_TOO_LONG and closes only that connection', async () => {
    const d = await daemon();
    const bystander = await lineClient(d);
    expect(await bystander.ask('SET k v')).toBe('STORED');
    const c = await lineClient(d);
    expect(await c.ask('STATS')).toMatch(/^STATS /);
    // 64 KiB is the cap; the line never even ends.
    c.send(`SET k ${'x'.repeat(70 * 1024)}`);
    expect(await c.line()).toMatch(/^ERROR LINE_TOO_LONG a line is longer than 65536 bytes$/);
    expect(await c.line()).toBeNull();
    expect(await bystander.ask('GET k')).toBe('VALUE v');
    const fresh = await lineClient(d);
    expect(await fresh.ask('GET k')).toBe('VALUE v');
  });

  it('answers binary garbage with ERROR lines, one per line of it', async () => {
    const d = await daemon();
    const c = await lineClient(d);
    // High bytes, controls and NULs: nothing that can spell a command.
    const garbage = Buffer.alloc(4096, 0);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 151) % 7 === 0 ? 0 : 0x80 | (i * 37);
    garbage[1000] = 0x0a;
    c.send(garbage);
    c.send('\nSTATS\n');
    expect(await c.line()).toMatch(/^ERROR UNKNOWN_COMMAND /);
    expect(await c.line()).toMatch(/^ERROR UNKNOWN_COMMAND /);
    expect(await c.line()).toMatch(/^STATS /);
  });

  it('drops a connection whose first byte is the framing byte but whose frame is garbage', async () => {
    const d = await daemon();
    const bystander = await lineClient(d);
    for (const garbage of [
      new Uint8Array([0x01, 0xff, 0xff, 0xff, 0xff]), // a 4 GiB body: refused from the header
      new Uint8Array([0x01, 0x03, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff]), // an undecodable Frame
    ]) {
      const socket = connect(d.endpoint);
      await once(socket, 'connect');
      socket.write(garbage);
      socket.resume();
      await once(socket, 'close');
    }
    expect(await bystander.ask('STATS')).toMatch(/^STATS /);
  });

  it('answers many pipelined commands in one chunk, in order', async () => {
    const d = await daemon();
    const c = await lineClient(d);
    let batch = '';
    for (let i = 0; i < 500; i++) batch += `SET k${i} v${i}\nGET k${i}\n`;
    c.send(batch);
    for (let i = 0; i < 500; i++) {
      expect(await c.line()).toBe('STORED');
      expect(await c.line()).toBe(`VALUE v${i}`);
    }
  });

  it('stops reading from a client that does not read its answers, and loses none', async () => {
    const d = await daemon();
    const c = await lineClient(d);
    const big = 'x'.repeat(60_000);
    expect(await c.ask(`SET big ${big}`)).toBe('STORED');
    c.socket.pause();
    c.send('GET big\n'.repeat(300)); // 18 MB of answers
    await new Promise((r) => setTimeout(r, 200));
    c.socket.resume();
    for (let i = 0; i < 300; i++) expect(await c.line()).toBe(`VALUE ${big}`);
  });
});

describe('the framed wire', () => {
  it('gets, sets, deletes and counts', async () => {
    const d = await daemon();
    const kv = await kvClient(d);
    expect(kv.route).toBe('direct');
    expect(await kv.get('missing')).toBeUndefined();
    await kv.set('k', new Uint8Array([0, 255, 10]));
    const hit = await kv.get('k');
    expect(hit && [...hit.value]).toEqual([0, 255, 10]);
    expect(hit?.ttlRemainingMs).toBe(0);
    expect(await kv.delete('k')).toBe(true);
    expect(await kv.delete('k')).toBe(false);
    expect(await kv.stats()).toMatchObject({
      entries: 0,
      hits: 1n,
      misses: 1n,
      sets: 1n,
      deletes: 1n,
      connections: 1,
      handoffs: 0n,
    });
  });

  it('expires a key at its TTL, and reports what is left of it', async () => {
    const d = await daemon();
    const kv = await kvClient(d);
    await kv.set('t', 'v', { ttlMs: 60 });
    const hit = await kv.get('t');
    expect(hit?.ttlRemainingMs).toBeGreaterThan(0);
    expect(hit?.ttlRemainingMs).toBeLessThanOrEqual(60);
    await vi.waitFor(async () => expect(await kv.get('t')).toBeUndefined());
    expect((await kv.stats()).expired).toBe(1n);
  });

  it('shares one store with the line wire', async () => {
    const d = await daemon();
    const kv = await kvClient(d);
    const line = await lineClient(d);
    await kv.set('shared', 'from frames');
    expect(await line.ask('GET shared')).toBe('VALUE from%20frames');
  });

  it('answers malformed payloads with a typed failure and keeps the connection', async () => {
    const d = await daemon();
    const frames = await frameClient(d);
    for (const garbage of [
      new Uint8Array(0),
      new Uint8Array([0xff]),
      new Uint8Array([0x12, 0x09, 0x0a]), // truncated
      new Uint8Array(300).fill(0x7b), // nested start-groups
      text('GET k\n'),
    ]) {
      expect(await rawRequest(frames, garbage)).toMatchObject({
        result: 'failure',
        code: 'MALFORMED_REQUEST',
      });
    }
    expect(await rawRequest(frames, encodeRequest({ op: 'stats' }))).toMatchObject({
      result: 'stats',
    });
  });

  it('refuses an oversized request from its size, and over-cap keys and values by name', async () => {
    const d = await daemon({ store: { maxValueBytes: 1000 } });
    const frames = await frameClient(d);
    const huge = encodeRequest({
      op: 'set',
      key: text('k'),
      value: new Uint8Array(5000),
      ttlMs: 0,
    });
    expect(await rawRequest(frames, huge)).toMatchObject({ result: 'failure', code: 'TOO_LARGE' });
    const kv = await kvClient(d);
    await expect(kv.set('k', new Uint8Array(1001))).rejects.toMatchObject({
      code: 'INVALID_VALUE',
    });
    await expect(kv.set('', 'v')).rejects.toMatchObject({ code: 'INVALID_KEY' });
    await expect(kv.get('k'.repeat(251))).rejects.toBeInstanceOf(DemoKvError);
  });

  it('will not start with a value cap whose GET answer could not fit a frame (issue 12 case 2)', async () => {
    // Such a value would be stored, and then every GET of it would have no answer.
    await expect(
      startTestDaemon(tmp.path('unanswerable.sock'), {
        store: { maxValueBytes: MAX_FRAME_BYTES - 100 },
      }),
    ).rejects.toThrow(/^store.maxValueBytes must be at most \d+: a GET answers the value/);
    expect(existsSync(tmp.path('unanswerable.sock'))).toBe(false);

    // At the cap, the largest value goes in and comes back out, under a full W3C trace context.
    const d = await daemon({ store: { maxValueBytes: MAX_ANSWERABLE_VALUE_BYTES } });
    const kv = await kvClient(d);
    await kv.set('largest', new Uint8Array(MAX_ANSWERABLE_VALUE_BYTES).fill(7));
    const socket = connect(d.endpoint);
    closers.push(() => socket.destroy());
    await once(socket, 'connect');
    socket.write(
      encodeFramed(
        requestFrame({
          payloadProtocol: KV_PAYLOAD_PROTOCOL.id,
          requestId: 1n,
          payload: encodeRequest({ op: 'get', key: text('largest'), waitMs: 0 }),
          traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
          tracestate: `vendor=${'c'.repeat(505)}`,
        }),
      ),
    );
    const decoder = new FrameDecoder();
    const frames: ReturnType<FrameDecoder['push']> = [];
    socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
    await vi.waitFor(() => expect(frames).toHaveLength(1), { timeout: 15_000 });
    const reply = decodeResponse(frames[0]!.payload);
    expect(reply.result === 'found' && reply.value.length).toBe(MAX_ANSWERABLE_VALUE_BYTES);
  });

  it('refuses a compressed payload it cannot read, with a typed failure', async () => {
    const d = await daemon();
    const socket = connect(d.endpoint);
    closers.push(() => socket.destroy());
    await once(socket, 'connect');
    socket.write(
      encodeFramed(
        requestFrame({
          payloadProtocol: KV_PAYLOAD_PROTOCOL.id,
          requestId: 7n,
          payloadEncoding: PayloadEncoding.ZSTD,
          payload: encodeRequest({ op: 'stats' }),
        }),
      ),
    );
    const decoder = new FrameDecoder();
    const [frame] = decoder.push((await once(socket, 'data'))[0] as Buffer);
    expect(frame?.requestId).toBe(7n);
    expect(decodeResponse(frame!.payload)).toMatchObject({
      result: 'failure',
      code: 'MALFORMED_REQUEST',
      message: 'payload encoding ZSTD is not supported',
    });
  });

  it('drops only the connection that sends a protocol the daemon does not serve', async () => {
    const d = await daemon();
    const bad = await frameClient(d);
    await expect(bad.request(0xf0d1, new Uint8Array(0))).rejects.toMatchObject({ code: 'CLOSED' });
    const kv = await kvClient(d);
    expect(await kv.get('k')).toBeUndefined();
  });

  it('lets a GET wait for a SET — from the other wire, too', async () => {
    const d = await daemon();
    const kv = await kvClient(d);
    const line = await lineClient(d);
    const waiting = kv.get('soon', { waitMs: 10_000 });
    await vi.waitFor(() => expect(d.store.waiting).toBe(1));
    expect(await line.ask('SET soon here')).toBe('STORED');
    expect(str((await waiting)!.value)).toBe('here');
    expect(await kv.get('never', { waitMs: 30 })).toBeUndefined();
  });

  it('ends a wait the client cancelled, and frees its slot', async () => {
    const d = await daemon({ store: { maxWaiters: 1 } });
    const kv = await kvClient(d);
    const abort = new AbortController();
    const waiting = kv.get('k', { waitMs: 10_000, signal: abort.signal });
    await vi.waitFor(() => expect(d.store.waiting).toBe(1));
    await expect(kv.get('other', { waitMs: 10_000 })).rejects.toMatchObject({ code: 'BUSY' });
    abort.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    await vi.waitFor(() => expect(d.store.waiting).toBe(0));
    await expect(kv.get('k', { waitMs: 60_001 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('identity and lifecycle', () => {
  it('answers identity probes and writes its sidecar', async () => {
    const d = await daemon({ idleTimeoutSecs: 300 });
    const verified = await probeDaemon(d.endpoint, { pid: process.pid });
    expect(verified.identity.ipcEndpoint?.path).toBe(d.endpoint);
    expect(verified.identity.idleTimeoutSecs).toBe(300);
    const sidecar = JSON.parse(readFileSync(d.sidecarPath, 'utf8'));
    expect(sidecar).toMatchObject({ pid: process.pid, idle_timeout_secs: 300 });
    expect(sidecar.ipc_endpoint.path).toBe(d.endpoint);
  });

  it('close() lets a running request finish, then removes socket and sidecar', async () => {
    const d = await daemon();
    const kv = await kvClient(d);
    const line = await lineClient(d);
    const waiting = kv.get('k', { waitMs: 300 });
    await vi.waitFor(() => expect(d.store.waiting).toBe(1));
    const started = performance.now();
    await d.close();
    // The GET was answered (its wait ran out), not cut off.
    await expect(waiting).resolves.toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    await line.closed;
    expect(existsSync(d.endpoint)).toBe(false);
    expect(existsSync(d.sidecarPath)).toBe(false);
    expect(await d.stopped).toBe('requested');
    await expect(DemoKvClient.connectDirect(d.endpoint)).rejects.toMatchObject({ code: 'CONNECT' });
  });

  it('close() gives up on what outlasts its drain deadline', async () => {
    const d = await daemon({ drainDeadlineMs: 150 });
    const kv = await kvClient(d);
    // Settled into a value now: it fails while close() is still running.
    const waiting = kv.get('k', { waitMs: 20_000 }).catch((error: unknown) => error);
    await vi.waitFor(() => expect(d.store.waiting).toBe(1));
    const started = performance.now();
    await d.close();
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await waiting).toMatchObject({ code: 'CLOSED' });
    expect(d.store.waiting).toBe(0);
  });

  it('stops by itself after its idle timeout, but not while a client is connected', async () => {
    const d = await daemon({ idleTimeoutSecs: 1 });
    const line = await lineClient(d);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await line.ask('STATS')).toMatch(/connections=1 /);
    line.close();
    const started = performance.now();
    expect(await d.stopped).toBe('idle');
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    expect(existsSync(d.endpoint)).toBe(false);
    expect(existsSync(d.sidecarPath)).toBe(false);
  });

  it('refuses an endpoint another daemon is serving, and leaves it serving', async () => {
    const d = await daemon();
    await expect(startTestDaemon(d.endpoint)).rejects.toMatchObject({ code: 'ADDRESS_IN_USE' });
    expect(await (await kvClient(d)).get('k')).toBeUndefined();
  });

  it('leaves no file descriptor behind', async () => {
    const before = openFds();
    for (let round = 0; round < 3; round++) {
      const d = await startTestDaemon(tmp.path(`leak${round}.sock`), { drainDeadlineMs: 100 });
      const clients = await Promise.all(
        Array.from({ length: 5 }, () => DemoKvClient.connectDirect(d.endpoint)),
      );
      const lines = await Promise.all(
        Array.from({ length: 5 }, () => LineClient.connect(d.endpoint)),
      );
      await Promise.all(clients.map((c, i) => c.set(`k${i}`, 'v')));
      await Promise.all(lines.map((l) => l.ask('GET k1')));
      // Cut off by close(): its failure is expected.
      const pending = clients[0]!.get('never', { waitMs: 10_000 }).catch(() => undefined);
      await d.close('leak test');
      await pending;
      for (const c of clients) c.close();
      for (const l of lines) l.close();
      await Promise.all(lines.map((l) => l.closed));
    }
    await vi.waitFor(() => expect(openFds()).toBe(before));
  });
});
