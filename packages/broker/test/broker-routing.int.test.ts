// The broker end to end, with real processes: daemons spawned on demand,
// clients handed off or reconnected, the first request riding with the
// Hello, and admin and metrics after real traffic. Faults: broker-faults.

import { readFileSync } from 'node:fs';
import { FrameClient } from '@handoff/backend-sdk';
import {
  AdminReplyKind,
  AdminVerb,
  ErrorCode,
  encodeFramed,
  FrameDecoder,
  requestFrame,
} from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import { adminRequest } from '../src/client/admin-client.js';
import { connectService } from '../src/client/connect-service.js';
import { liveBrokers, P } from './broker-session.js';
import { echoService, str, text } from './harness.js';

const { broker } = liveBrokers();

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
  it('keeps the metric series of refused Hellos bounded, whatever names clients ask for', async () => {
    const b = await broker([echoService('echo')]);
    const names = Array.from({ length: 100 }, (_, i) => `nope-${i}`);
    for (const name of names)
      await expect(
        connectService(name, { version: '1.0.0', brokerPath: b.socketPath, retry: false }),
      ).rejects.toMatchObject({ code: 'REFUSED' });
    const { body } = await adminRequest(b.socketPath, { verb: AdminVerb.METRICS });
    const refusedSeries = body.split('\n').filter((l) => l.startsWith('hello_refused_total{'));
    expect(refusedSeries).toHaveLength(64 + 1);
    expect(body).toContain('hello_refused_total{service="nope-0",code="SERVICE_UNKNOWN"} 1');
    expect(body).toContain('hello_refused_total{service="(other)",code="SERVICE_UNKNOWN"} 36');
    expect(body).not.toContain('service="nope-99"');
  });

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
    // The daemon writes the client's accepted relay itself and acks the
    // broker after: the client can be done before the broker has counted
    // the handoff, so wait for the count rather than race it.
    let metrics = await adminRequest(b.socketPath, { verb: AdminVerb.METRICS });
    await expect
      .poll(
        async () => {
          metrics = await adminRequest(b.socketPath, { verb: AdminVerb.METRICS });
          return metrics.body;
        },
        { timeout: 5000 },
      )
      .toContain('handoff_total{outcome="accepted"} 1');
    expect(metrics.kind).toBe(AdminReplyKind.OPENMETRICS);
    expect(metrics.body).toContain('hello_total{service="echo",outcome="handoff"} 1');
    expect(metrics.body).toContain('hello_total{service="nope",outcome="refused"} 1');
    expect(metrics.body).toContain('handoff_total{outcome="accepted"} 1');
    expect(metrics.body).toContain('spawn_attempts_total{service="echo",outcome="ok"} 1');
    expect(metrics.body).toContain('hello_refused_total{service="nope",code="SERVICE_UNKNOWN"} 1');
    expect(metrics.body).toMatch(/active_backends 1\n/);
    expect(metrics.body).toMatch(/hello_duration_seconds_count\{service="echo"\} 1\n/);
    expect(metrics.body).toMatch(/hello_duration_seconds_count\{service="nope"\} 1\n/);
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
