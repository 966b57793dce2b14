// The broker end to end, with real processes: daemons spawned on demand,
// clients handed off or reconnected, hostile Hellos, failures mid-handoff,
// and a broker killed and restarted under live sessions.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { FrameClient } from '@handoff/backend-sdk';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminReply,
  AdminReplyKind,
  AdminRequest,
  AdminVerb,
  CONTROL_PAYLOAD_PROTOCOL,
  ErrorCode,
  encodeFramed,
  FrameDecoder,
  Hello,
  HelloReply,
  requestFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../src/broker-server.js';
import { adminRequest } from '../src/client/admin-client.js';
import { connectService } from '../src/client/connect-service.js';
import {
  echoService,
  fixtures,
  killPid,
  startProcess,
  str,
  tempDir,
  text,
  tsxArgs,
} from './harness.js';

const P = 0xf001;
const brokers: Broker[] = [];
const dirs: ReturnType<typeof tempDir>[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await Promise.all(brokers.splice(0).map((b) => b.close({ deadlineMs: 500 })));
});
afterAll(() => {
  for (const d of dirs) d.remove();
});

async function broker(services: unknown[], options: Record<string, unknown> = {}) {
  const tmp = tempDir('broker');
  dirs.push(tmp);
  const b = await startBroker({
    socketPath: tmp.path('run/broker.sock'),
    services,
    watchConfig: false,
    ...options,
  });
  brokers.push(b);
  return b;
}

/** Sends raw bytes as a first frame and returns the decoded HelloReply (or null on close). */
async function rawHello(
  path: string,
  bytes: Uint8Array,
  { end = false } = {},
): Promise<HelloReply | null> {
  const socket = connect(path);
  await once(socket, 'connect');
  socket.write(bytes);
  if (end) socket.end();
  const decoder = new FrameDecoder();
  return new Promise((resolve) => {
    socket.on('data', (chunk) => {
      const [frame] = decoder.push(chunk);
      if (frame) {
        socket.destroy();
        resolve(HelloReply.decode(frame.payload));
      }
    });
    socket.on('close', () => resolve(null));
    socket.on('error', () => resolve(null));
  });
}

const helloBytes = (patch: Partial<Hello> = {}) =>
  encodeFramed(
    requestFrame({
      payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
      requestId: 1n,
      payload: Hello.encode({
        clientMinProtocol: 1,
        clientMaxProtocol: 1,
        serviceName: 'echo',
        wantedVersion: '1.0.0',
        ...patch,
      }),
    }),
  );

describe('broker routing and handoff', () => {
  it('spawns the daemon on the first Hello and hands the connection over', async () => {
    const b = await broker([echoService('echo')]);
    const { socket, route, negotiated } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    expect(route).toBe('handoff');
    expect(negotiated.backendPipe).toMatch(/echo-1\.0\.0\.sock$/);
    const client = new FrameClient(socket);
    expect(str((await client.request(P, text('hello'))).payload)).toBe('hello');
    client.close();
    expect(b.registry.list()).toHaveLength(1);
  });

  it('serves many clients through handoff to one spawned daemon', async () => {
    const b = await broker([echoService('echo')]);
    const connections = await Promise.all(
      Array.from({ length: 40 }, () =>
        connectService('echo', { version: '1.0.0', brokerPath: b.socketPath, timeoutMs: 30_000 }),
      ),
    );
    expect(connections.every((c) => c.route === 'handoff')).toBe(true);
    const clients = connections.map((c) => new FrameClient(c.socket));
    const answers = await Promise.all(clients.map((c, i) => c.request(P, text(`c${i}`))));
    for (const [i, a] of answers.entries()) expect(str(a.payload)).toBe(`c${i}`);
    for (const c of clients) c.close();
    expect(b.registry.list()).toHaveLength(1);
  });

  it('tells clients to reconnect when handoff is off for the service', async () => {
    const b = await broker([echoService('echo', { handoff: false })]);
    const { socket, route } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    expect(route).toBe('reconnect');
    const client = new FrameClient(socket);
    expect(str((await client.request(P, text('direct'))).payload)).toBe('direct');
    client.close();
  });

  it('refuses unknown services, blocked versions, and reports spawn failures with the exit status and stderr', async () => {
    const b = await broker([echoService('echo'), echoService('broken', {}, ['--fail-start'])]);
    await expect(
      connectService('nope', { version: '1.0.0', brokerPath: b.socketPath }),
    ).rejects.toMatchObject({
      code: 'REFUSED',
      refusal: { code: ErrorCode.SERVICE_UNKNOWN },
    });
    await expect(
      connectService('echo', { version: '2.0.0', brokerPath: b.socketPath }),
    ).rejects.toMatchObject({
      refusal: { code: ErrorCode.VERSION_BLOCKED },
    });
    const failure = await connectService('broken', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    }).catch((e) => e);
    expect(failure.refusal.code).toBe(ErrorCode.BACKEND_SPAWN_FAILED);
    expect(failure.refusal.details.exit_status).toBe('3');
    expect(failure.refusal.details.stderr_tail).toContain('refusing to start');
  });

  it('limits spawns to 3 per 30 s per service', async () => {
    const b = await broker([echoService('broken', {}, ['--fail-start'])]);
    const codes: ErrorCode[] = [];
    for (let i = 0; i < 4; i++) {
      const e = await connectService('broken', {
        version: '1.0.0',
        brokerPath: b.socketPath,
        timeoutMs: 30_000,
      }).catch((x) => x);
      codes.push(e.refusal.code);
    }
    expect(codes).toEqual([
      ErrorCode.BACKEND_SPAWN_FAILED,
      ErrorCode.BACKEND_SPAWN_FAILED,
      ErrorCode.BACKEND_SPAWN_FAILED,
      ErrorCode.RATE_LIMITED,
    ]);
  });

  it('fails a daemon that never becomes ready within its deadline', async () => {
    const b = await broker([echoService('slow', { readyTimeoutMs: 1500 }, ['--hang'])]);
    const e = await connectService('slow', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    }).catch((x) => x);
    expect(e.refusal.code).toBe(ErrorCode.BACKEND_SPAWN_FAILED);
    expect(e.message).toContain('not ready');
  });
});

describe('the first request with the Hello (initialData)', () => {
  it.each([
    ['handoff', true],
    ['reconnect', false],
  ] as const)(
    'reaches the daemon and is answered on the returned socket (%s route)',
    async (route, handoff) => {
      const b = await broker([echoService('echo', { handoff })]);
      const request = encodeFramed(
        requestFrame({ payloadProtocol: P, requestId: 77n, payload: text(`first via ${route}`) }),
      );
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const connection = await connectService('echo', {
        version: '1.0.0',
        brokerPath: b.socketPath,
        timeoutMs: 30_000,
        initialData: request,
        traceparent,
      });
      expect(connection.route).toBe(route);
      const decoder = new FrameDecoder();
      const [answer] = await new Promise<ReturnType<FrameDecoder['push']>>((resolve) => {
        connection.socket.on('data', (chunk: Buffer) => {
          const frames = decoder.push(chunk);
          if (frames.length > 0) resolve(frames);
        });
        connection.socket.resume();
      });
      expect(answer!.requestId).toBe(77n);
      expect(str(answer!.payload)).toBe(`first via ${route}`);
      // The session goes on as usual.
      const client = new FrameClient(connection.socket);
      expect(str((await client.request(P, text('second'))).payload)).toBe('second');
      client.close();
    },
  );
});

describe('admin and metrics on the broker socket', () => {
  it('reports real metrics after real traffic, and shuts down on request', async () => {
    const b = await broker([echoService('echo')]);
    const { socket } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    socket.destroy();
    await expect(
      connectService('nope', { version: '1.0.0', brokerPath: b.socketPath }),
    ).rejects.toBeTruthy();
    const metrics = await adminRequest(b.socketPath, { verb: AdminVerb.METRICS });
    expect(metrics.kind).toBe(AdminReplyKind.OPENMETRICS);
    expect(metrics.body).toContain('hello_total{service="echo",outcome="handoff"} 1');
    expect(metrics.body).toContain('hello_total{service="nope",outcome="refused"} 1');
    expect(metrics.body).toContain('handoff_total{outcome="accepted"} 1');
    expect(metrics.body).toContain('spawn_attempts_total{outcome="ok"} 1');
    expect(metrics.body).toMatch(/active_backends 1\n/);
    expect(metrics.body).toMatch(/hello_duration_seconds_count 2\n/);
    expect(metrics.body.endsWith('# EOF\n')).toBe(true);
    const status = JSON.parse(
      (await adminRequest(b.socketPath, { verb: AdminVerb.STATUS, json: true })).body,
    );
    const { version } = JSON.parse(
      readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    expect(status).toMatchObject({ schema_version: 1, active_backends: 1, version });
    const list = JSON.parse(
      (await adminRequest(b.socketPath, { verb: AdminVerb.LIST_INSTANCES, json: true })).body,
    );
    expect(JSON.stringify(list)).toContain('echo-1.0.0.sock');
    const health = await adminRequest(b.socketPath, { verb: AdminVerb.BACKEND_HEALTH, json: true });
    expect(health.exitCode).toBe(0);
    const bye = await adminRequest(b.socketPath, {
      verb: AdminVerb.SHUTDOWN,
      drainDeadlineMs: 1000n,
    });
    expect(bye.exitCode).toBe(0);
    await expect.poll(() => b.registry.list().length, { timeout: 10_000 }).toBe(0);
  });
});

describe('hostile first frames', () => {
  it('answers a bad framing byte, an oversize Hello and garbage with Refused', async () => {
    const b = await broker([echoService('echo')], { helloDeadlineMs: 300 });
    const badVersion = await rawHello(b.socketPath, new Uint8Array([2, 0, 0, 0, 0]));
    expect(badVersion?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.VERSION_UNSUPPORTED },
    });
    const oversize = new Uint8Array(5);
    new DataView(oversize.buffer).setUint32(1, 70 * 1024, true);
    oversize[0] = 1;
    const big = await rawHello(b.socketPath, oversize);
    expect(big?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
    const undecodable = await rawHello(b.socketPath, new Uint8Array([1, 2, 0, 0, 0, 0x0f, 0x0f]));
    expect(undecodable?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
    const upper = await rawHello(b.socketPath, helloBytes({ serviceName: 'Echo' }));
    expect(upper?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
    const liar = await rawHello(b.socketPath, helloBytes({ peerPid: 1 }));
    expect(liar?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
  });

  // Regression (issue 12, case 5): a truncated first frame followed by a
  // half-close was closed without the Refused that DESIGN §2.7 promises.
  it('answers a truncated first frame followed by a half-close with Refused{PEER_REJECTED}', async () => {
    const b = await broker([echoService('echo')], { helloDeadlineMs: 20_000 });
    const t0 = performance.now();
    for (const cut of [1, 4, 5, 7]) {
      const truncated = await rawHello(b.socketPath, helloBytes().subarray(0, cut), { end: true });
      expect(truncated?.result).toMatchObject({
        case: 'refused',
        value: { code: ErrorCode.PEER_REJECTED, reason: expect.stringContaining('truncated') },
      });
    }
    // Answered at the client's end of input, not at the read deadline.
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('answers an admin request followed by a half-close before closing', async () => {
    const b = await broker([echoService('echo')]);
    const request = encodeFramed(
      requestFrame({
        payloadProtocol: ADMIN_PAYLOAD_PROTOCOL,
        requestId: 9n,
        payload: AdminRequest.encode({ verb: AdminVerb.HEALTHZ }),
      }),
    );
    const socket = connect(b.socketPath);
    await once(socket, 'connect');
    socket.end(request);
    const decoder = new FrameDecoder();
    const frames = await new Promise<ReturnType<FrameDecoder['push']>>((resolve) => {
      const got: ReturnType<FrameDecoder['push']> = [];
      socket.on('data', (chunk) => got.push(...decoder.push(chunk)));
      socket.on('error', () => {});
      socket.on('close', () => resolve(got));
    });
    expect(frames.map((f) => f.requestId)).toEqual([9n]);
    expect(AdminReply.decode(frames[0]!.payload).exitCode).toBe(0);
  });

  it('refuses a Hello that never finishes, at the read deadline', async () => {
    const b = await broker([echoService('echo')], { helloDeadlineMs: 300 });
    const t0 = performance.now();
    const slow = await rawHello(b.socketPath, helloBytes().subarray(0, 7));
    expect(slow?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('drops a peer of another uid without a reply', async () => {
    const b = await broker([echoService('echo')]);
    const dir = b.socketPath.replace(/\/broker\.sock$/, '');
    chmodSync(dir, 0o711);
    chmodSync(b.socketPath, 0o666);
    const script = `const s=require('net').connect(process.argv[1]);let got=0;s.on('connect',()=>s.write(Buffer.from(process.argv[2],'hex')));s.on('data',d=>got+=d.length);s.on('error',()=>{});s.on('close',()=>console.log('closed after '+got+' bytes'))`;
    const child = spawn(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        '-e',
        script,
        b.socketPath,
        Buffer.from(helloBytes()).toString('hex'),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await once(child, 'exit');
    chmodSync(dir, 0o700);
    expect(out.trim()).toBe('closed after 0 bytes');
  });
});

describe('failures around the broker', () => {
  // A backend that writes client preludes leaves the broker unsure whether
  // the client was told anything, so the broker lets go and the client asks
  // again; a reference-style backend gets a second offer or a fallback relay.
  it.each([
    ['writes client preludes', []],
    ['plain channel', ['--plain-channel']],
  ])(
    'a daemon killed between offer and ack (%s): the client still gets a working connection',
    async (_kind, extra) => {
      const tmp = tempDir('die');
      dirs.push(tmp);
      const b = await broker(
        [echoService('echo', {}, ['--die-on-offer-once', tmp.path('died'), ...extra])],
        { handoffDeadlineMs: 3000 },
      );
      const t0 = performance.now();
      const { socket } = await connectService('echo', {
        version: '1.0.0',
        brokerPath: b.socketPath,
        timeoutMs: 30_000,
      });
      const client = new FrameClient(socket);
      expect(str((await client.request(P, text('survived'))).payload)).toBe('survived');
      client.close();
      expect(performance.now() - t0).toBeLessThan(30_000);
      expect(readFileSync(tmp.path('died'), 'utf8')).toBe('died');
    },
  );

  it('a broker killed with SIGKILL leaves handed-off sessions working; a new broker rediscovers the daemon', async () => {
    const tmp = tempDir('restart');
    dirs.push(tmp);
    const servicesFile = tmp.path('services.json');
    writeFileSync(servicesFile, JSON.stringify([echoService('echo')]));
    const socketPath = tmp.path('run/broker.sock');
    const first = await startProcess([
      ...tsxArgs,
      `${fixtures}/broker.ts`,
      socketPath,
      servicesFile,
    ]);
    cleanups.push(() => first.kill('SIGKILL'));
    const session = await connectService('echo', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 30_000,
    });
    expect(session.route).toBe('handoff');
    const client = new FrameClient(session.socket);
    await client.request(P, text('before'));
    const daemonPid = Number(
      readFileSync(`${session.negotiated.backendPipe}.identity.json`, 'utf8').match(
        /"pid": (\d+)/,
      )![1],
    );
    cleanups.push(() => killPid(daemonPid));
    await first.kill('SIGKILL');
    // The broker is gone; the session is not.
    expect(str((await client.request(P, text('after-broker-death'))).payload)).toBe(
      'after-broker-death',
    );
    const second = await startProcess([
      ...tsxArgs,
      `${fixtures}/broker.ts`,
      socketPath,
      servicesFile,
    ]);
    cleanups.push(() => second.kill('SIGTERM'));
    const again = await connectService('echo', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 30_000,
    });
    const pidNow = Number(
      readFileSync(`${again.negotiated.backendPipe}.identity.json`, 'utf8').match(
        /"pid": (\d+)/,
      )![1],
    );
    expect(pidNow).toBe(daemonPid); // rediscovered, not respawned
    const client2 = new FrameClient(again.socket);
    expect(str((await client2.request(P, text('rediscovered'))).payload)).toBe('rediscovered');
    client2.close();
    client.close();
  });
});

describe('file descriptor pressure', () => {
  it('out of fds: Hellos get Refused{FD_PRESSURE, retry_after_ms}, admin still answers, accepts recover', async () => {
    const tmp = tempDir('fdp');
    dirs.push(tmp);
    const servicesFile = tmp.path('services.json');
    writeFileSync(servicesFile, JSON.stringify([echoService('echo')]));
    const socketPath = tmp.path('run/broker.sock');
    const quoted = [process.execPath, ...tsxArgs, `${fixtures}/broker.ts`, socketPath, servicesFile]
      .map((part) => `'${part.replaceAll("'", `'\\''`)}'`)
      .join(' ');
    const child = spawn('bash', ['-c', `ulimit -n 128 && exec ${quoted}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    await once(child.stdout!, 'data');
    const unknown = () => rawHello(socketPath, helloBytes({ serviceName: 'no-such-service' }));
    expect((await unknown())?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.SERVICE_UNKNOWN },
    });
    // Hold connections that never send a Hello until a Hello is refused for
    // want of fds: each holder is accepted (and kept) while fds last.
    const holders: ReturnType<typeof connect>[] = [];
    let pressure: HelloReply | null = null;
    for (let i = 0; i < 200 && !pressure; i++) {
      const holder = connect(socketPath);
      holder.on('error', () => {});
      await once(holder, 'connect');
      holders.push(holder);
      const reply = await unknown();
      if (reply?.result.case === 'refused' && reply.result.value.code === ErrorCode.FD_PRESSURE)
        pressure = reply;
    }
    expect(pressure?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.FD_PRESSURE, retryAfterMs: 250n },
    });
    // Admin works on the spare fd too.
    const status = await adminRequest(socketPath, { verb: AdminVerb.STATUS, json: true });
    expect(status.exitCode).toBe(0);
    // Free the fds: accepts recover, and the refusals were counted.
    for (const holder of holders) holder.destroy();
    let recovered: HelloReply | null = null;
    for (let i = 0; i < 100; i++) {
      recovered = await unknown();
      if (
        recovered?.result.case === 'refused' &&
        recovered.result.value.code !== ErrorCode.FD_PRESSURE
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(recovered?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.SERVICE_UNKNOWN },
    });
    const metrics = await adminRequest(socketPath, { verb: AdminVerb.METRICS });
    expect(metrics.body).toMatch(/hello_total\{[^}]*outcome="fd_pressure"[^}]*\} [1-9]/);
  });
});
