// The endpoint cache (src/client/endpoint-cache.ts) against a real broker and
// real daemons: a repeat connect goes straight to the daemon (the broker saw
// one Hello); a daemon that died or was replaced, or an impostor bound on
// its path, is caught by the kernel check before any byte is written, and
// the same call falls back to the broker; the opt-outs hold; nothing leaks.
// Each case runs twice: with the daemon pinned by a pidfd, and by its /proc
// start time (what a kernel without pidfds gets).
import { readdirSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { AdminVerb, encodeFramed, type Frame, FrameDecoder, requestFrame } from '@handoff/protocol';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Broker } from '../src/broker-api.js';
import { startBroker } from '../src/broker-launch.js';
import { adminRequest } from '../src/client/admin-client.js';
import {
  CACHE_SESSION_VERB,
  cacheSessionReportsSettled,
} from '../src/client/cache-session-report.js';
import { ConnectServiceError, connectService } from '../src/client/connect-service.js';
import {
  clearEndpointCache,
  ENDPOINT_CACHE_ENV,
  endpointCacheSettled,
  endpointCacheSize,
  useProcessHandles,
} from '../src/client/endpoint-cache.js';
import {
  echoService,
  fixtures,
  killPid,
  quietFdCount,
  startProcess,
  str,
  tempDir,
  text,
  tsxArgs,
} from './harness.js';

const P = 0xf001;
/** Our open fd count once three readings 25 ms apart agree (2 s at most). */
const steadyFds = () => quietFdCount({ intervalMs: 25, agreeing: 3 });

const tmp = tempDir('endpoint-cache');
const brokers: Broker[] = [];
let envBefore: string | undefined;
beforeEach(() => {
  envBefore = process.env[ENDPOINT_CACHE_ENV];
  delete process.env[ENDPOINT_CACHE_ENV];
  clearEndpointCache();
});
afterEach(async () => {
  if (envBefore === undefined) delete process.env[ENDPOINT_CACHE_ENV];
  else process.env[ENDPOINT_CACHE_ENV] = envBefore;
  clearEndpointCache();
  useProcessHandles(true);
  await Promise.all(brokers.splice(0).map((b) => b.close({ deadlineMs: 1000 })));
});
afterAll(() => tmp.remove());

let n = 0;
async function broker(): Promise<Broker> {
  const b = await startBroker({
    socketPath: tmp.path(`run-${n++}/broker.sock`),
    services: [echoService('echo', {}, ['--pid-prefix'])],
    watchConfig: false,
    helloRateLimit: false,
  });
  brokers.push(b);
  return b;
}

const request = (payload: string) =>
  encodeFramed(requestFrame({ payloadProtocol: P, payload: text(payload), requestId: 7n }));

async function firstFrame(socket: Socket): Promise<Frame> {
  const decoder = new FrameDecoder();
  socket.resume();
  for await (const chunk of socket) {
    const [frame] = decoder.push(chunk as Buffer);
    if (frame) return frame;
  }
  throw new Error('closed before a frame');
}

/** One connect with a first request; the route and which daemon pid answered. */
async function ask(
  b: Broker,
  options: { endpointCache?: boolean } = { endpointCache: true },
): Promise<{ route: string; pid: number }> {
  const { socket, route } = await connectService('echo', {
    version: '1.0.0',
    brokerPath: b.socketPath,
    initialData: request('hi'),
    retry: false,
    ...options,
  });
  socket.on('error', () => {});
  const frame = await firstFrame(socket);
  socket.destroy();
  const [pid, payload] = str(frame.payload).split(':');
  expect(payload).toBe('hi');
  return { route, pid: Number(pid) };
}

async function hellos(b: Broker): Promise<number> {
  const reply = await adminRequest(b.socketPath, { verb: AdminVerb.METRICS });
  let sum = 0;
  for (const m of reply.body.matchAll(/^hello_total\{service="echo",outcome="[a-z]+"\} (\d+)$/gm))
    sum += Number(m[1]);
  return sum;
}

async function cacheSessions(b: Broker): Promise<number> {
  const reply = await adminRequest(b.socketPath, { verb: AdminVerb.METRICS });
  const m = /^endpoint_cache_sessions_total\{service="echo"\} (\d+)$/m.exec(reply.body);
  return Number(m?.[1] ?? 0);
}

async function endpointOf(b: Broker): Promise<string> {
  const reply = await adminRequest(b.socketPath, {
    verb: AdminVerb.LIST_INSTANCES,
    json: true,
    serviceName: 'echo',
  });
  const { instances } = JSON.parse(reply.body) as { instances: Array<{ endpoint: string }> };
  return instances[0]!.endpoint;
}

/** How many of our fds are pidfds, and how many are `/proc/<pid>/stat` of `pid`. */
function pinningFds(pid: number): { pidfds: number; statFds: number } {
  let pidfds = 0;
  let statFds = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target === 'anon_inode:[pidfd]') pidfds++;
    else if (target === `/proc/${pid}/stat`) statFds++;
  }
  return { pidfds, statFds };
}

for (const pinnedBy of ['pidfd', 'start time'] as const)
  describe(`endpoint cache (daemon pinned by ${pinnedBy})`, () => {
    beforeEach(() => useProcessHandles(pinnedBy === 'pidfd'));

    it('goes straight to the daemon after the first connect: the broker sees one Hello', async () => {
      const b = await broker();
      const first = await ask(b);
      expect(first.route).toBe('handoff');
      await endpointCacheSettled();
      expect(endpointCacheSize()).toBe(1);
      // The entry holds the daemon by a pidfd, or by its stat file; the other
      // pidfds are the in-process broker's own, one per daemon it spawned.
      const held = pinningFds(first.pid);
      expect(held.statFds).toBe(pinnedBy === 'pidfd' ? 0 : 1);
      // The broker runs in this process: the fds of a connection just ended
      // (its side and ours) close a turn or two later. Count once the number
      // holds still, here and below.
      const fdsBefore = await steadyFds();
      for (let i = 0; i < 5; i++) {
        const again = await ask(b);
        expect(again).toEqual({ route: 'cache', pid: first.pid });
      }
      expect(await hellos(b)).toBe(1);
      expect(await steadyFds()).toBe(fdsBefore);
      // The broker still counts them: the client reports them, batched.
      await cacheSessionReportsSettled();
      expect(await cacheSessions(b)).toBe(5);
      expect(await steadyFds()).toBe(fdsBefore);
      clearEndpointCache();
      expect(pinningFds(first.pid)).toEqual(
        pinnedBy === 'pidfd'
          ? { pidfds: held.pidfds - 1, statFds: 0 }
          : { pidfds: held.pidfds, statFds: 0 },
      );
    });

    it('delivers initialData larger than a socket buffer whole, before what the caller writes next', async () => {
      const b = await broker();
      await ask(b);
      await endpointCacheSettled();
      // More than the kernel takes at once: part goes inside the call, the
      // rest through Node's queue, and the caller's own write after both.
      const big = 'b'.repeat(1 << 20);
      const initialData = Buffer.concat([request('a'), request(big)]);
      const { socket, route } = await connectService('echo', {
        version: '1.0.0',
        brokerPath: b.socketPath,
        initialData,
        endpointCache: true,
        retry: false,
      });
      expect(route).toBe('cache');
      socket.write(request('c'));
      const decoder = new FrameDecoder({ maxFrameBytes: 4 << 20 });
      const payloads: string[] = [];
      for await (const chunk of socket) {
        for (const frame of decoder.push(chunk as Buffer))
          payloads.push(str(frame.payload).split(':')[1]!);
        if (payloads.length === 3) break;
      }
      socket.destroy();
      expect(payloads.map((p) => (p.length > 10 ? `${p[0]}×${p.length}` : p))).toEqual([
        'a',
        `b×${big.length}`,
        'c',
      ]);
    });

    it('counts reported sessions only for defined services', async () => {
      const b = await broker();
      const report = (serviceName: string) =>
        adminRequest(b.socketPath, { verb: CACHE_SESSION_VERB, serviceName });
      expect((await report('echo')).exitCode).toBe(0);
      const unknown = await report('not-defined');
      expect(unknown.exitCode).toBe(1);
      const metrics = (await adminRequest(b.socketPath, { verb: AdminVerb.METRICS })).body;
      expect(metrics).toContain('endpoint_cache_sessions_total{service="echo"} 1');
      expect(metrics).not.toContain('not-defined');
    });

    it('falls back to the broker, in the same call, when the daemon was restarted', async () => {
      const b = await broker();
      const first = await ask(b);
      await endpointCacheSettled();
      expect((await ask(b)).route).toBe('cache');
      await killPid(first.pid);
      // Another daemon serves now (the broker respawns it on this Hello).
      const restarted = await ask(b, { endpointCache: false });
      expect(restarted.pid).not.toBe(first.pid);
      const after = await ask(b);
      expect(after.route).not.toBe('cache');
      expect(after.pid).toBe(restarted.pid);
      await endpointCacheSettled();
      expect(await ask(b)).toEqual({ route: 'cache', pid: restarted.pid });
    });

    it('falls back when the daemon is gone and nothing listens on its path', async () => {
      const b = await broker();
      const first = await ask(b);
      await endpointCacheSettled();
      await killPid(first.pid);
      const after = await ask(b);
      expect(after.route).not.toBe('cache');
      expect(after.pid).not.toBe(first.pid);
    });

    it('never writes a byte to an impostor bound on the cached path, and falls back', async () => {
      const b = await broker();
      const first = await ask(b);
      await endpointCacheSettled();
      const endpoint = await endpointOf(b);
      await killPid(first.pid);
      const impostor = await startProcess([
        ...tsxArgs,
        join(fixtures, 'impostor-listener.ts'),
        endpoint,
      ]);
      try {
        let out = '';
        const closed = new Promise<number>((resolve) => {
          impostor.child.stdout!.on('data', (d) => {
            out += d;
            const m = /closed (\d+)/.exec(out);
            if (m) resolve(Number(m[1]));
          });
        });
        // The cache connects, sees a pid that is not the daemon's, hangs up
        // without writing, and asks the broker, which will not start a daemon
        // on a path a live process serves: a typed refusal, never the impostor.
        const refused = await ask(b).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(ConnectServiceError);
        expect((refused as ConnectServiceError).code).toBe('REFUSED');
        // The impostor's lines reach us when they do: its "closed" line
        // comes after its "connection" line.
        expect(await closed).toBe(0);
        expect(out).toContain('connection');
        // Once the path is free again the broker serves the service afresh.
        await impostor.kill();
        const after = await ask(b);
        expect(after.route).not.toBe('cache');
        expect([first.pid, impostor.pid]).not.toContain(after.pid);
      } finally {
        await impostor.kill();
      }
    });

    it('is off per call with endpointCache: false, and for the process with the environment', async () => {
      const b = await broker();
      await ask(b);
      await endpointCacheSettled();
      expect((await ask(b, { endpointCache: false })).route).toBe('handoff');
      process.env[ENDPOINT_CACHE_ENV] = 'off';
      expect((await ask(b, { endpointCache: true })).route).toBe('handoff');
      process.env[ENDPOINT_CACHE_ENV] = 'on';
      expect((await ask(b, {})).route).toBe('cache');
      delete process.env[ENDPOINT_CACHE_ENV];
      // The default is off.
      expect((await ask(b, {})).route).toBe('handoff');
      expect(await hellos(b)).toBe(4);
    });

    it('leaves no fd behind across misses, hits and fallbacks', async () => {
      const b = await broker();
      await ask(b);
      await endpointCacheSettled();
      await ask(b);
      const before = await quietFdCount({ intervalMs: 100, maxMs: 3000 });
      const first = await ask(b);
      await killPid(first.pid);
      expect((await ask(b)).route).not.toBe('cache');
      await endpointCacheSettled();
      expect((await ask(b)).route).toBe('cache');
      // The broker runs in this process: its copies of handed-off fds go when
      // the daemon's ack arrives, after our reply; the count settles then.
      expect(await quietFdCount({ intervalMs: 100, maxMs: 3000 })).toBeLessThanOrEqual(before);
    });
  });
