import { AdminReplyKind, AdminRequest, AdminVerb } from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import {
  AdminError,
  DEFAULT_DRAIN_DEADLINE_MS,
  handleAdminRequest,
  MAX_DRAIN_DEADLINE_MS,
} from '../src/admin.js';
import { OPENMETRICS_CONTENT_TYPE } from '../src/metrics.js';
import { fakeBroker } from './admin-harness.js';

const ask = (request: Partial<AdminRequest>, broker = fakeBroker()) =>
  handleAdminRequest(AdminRequest.create(request), broker);

const json = async (request: Partial<AdminRequest>, broker = fakeBroker()) => {
  const reply = await ask({ ...request, json: true }, broker);
  expect(reply.kind).toBe(AdminReplyKind.JSON);
  expect(reply.contentType).toBe('application/json');
  expect(reply.body.startsWith('{"schema_version":1,')).toBe(true);
  return { reply, body: JSON.parse(reply.body) as Record<string, unknown> };
};

describe('handleAdminRequest', () => {
  it('STATUS: aligned text, or JSON with schema_version first', async () => {
    const text = await ask({ verb: AdminVerb.STATUS });
    expect(text.kind).toBe(AdminReplyKind.TEXT);
    expect(text.exitCode).toBe(0);
    expect(text.body).toBe(
      [
        'broker:       pid 1234, version 0.1.0',
        'socket:       /run/user/1000/handoff/broker.sock',
        'uptime:       1h 2m 5s',
        'services:     2',
        'backends:     1 active',
        'connections:  3 open',
        'state:        serving',
        'memory:       rss 96.0 MiB, heap 10.5 MiB used of 16.0 MiB',
        '',
      ].join('\n'),
    );
    const { body } = await json({ verb: AdminVerb.STATUS });
    expect(body).toEqual({
      schema_version: 1,
      pid: 1234,
      version: '0.1.0',
      socket_path: '/run/user/1000/handoff/broker.sock',
      uptime_seconds: 3725.4,
      services: 2,
      active_backends: 1,
      connections_open: 3,
      draining: false,
      memory: {
        rss_bytes: 96 * 2 ** 20,
        heap_used_bytes: 10.5 * 2 ** 20,
        heap_total_bytes: 16 * 2 ** 20,
        external_bytes: 3 * 2 ** 20,
      },
    });
  });

  it('LIST_INSTANCES: a table, filtered by service when one is named', async () => {
    const all = await ask({ verb: AdminVerb.LIST_INSTANCES });
    expect(all.body).toBe(
      [
        'SERVICE  VERSION       PID   STATE     ROUTED  STARTED                   ENDPOINT',
        'demo-kv  1.2.0         4242  ready     17      2025-01-02T03:04:05.000Z  /run/user/1000/handoff/services/demo-kv@1.2.0.sock',
        'search   0.9.1-beta.1  -     starting  0       2025-01-02T03:05:00.000Z  /run/user/1000/handoff/services/search@0.9.1-beta.1.sock',
        '',
      ].join('\n'),
    );
    const { body } = await json({ verb: AdminVerb.LIST_INSTANCES, serviceName: 'demo-kv' });
    expect(body).toEqual({
      schema_version: 1,
      instances: [
        {
          service: 'demo-kv',
          version: '1.2.0',
          endpoint: '/run/user/1000/handoff/services/demo-kv@1.2.0.sock',
          pid: 4242,
          state: 'ready',
          started_at_unix_ms: Date.UTC(2025, 0, 2, 3, 4, 5),
          connections_routed: 17,
        },
      ],
    });
    const none = await ask({ verb: AdminVerb.LIST_INSTANCES, serviceName: 'nope' });
    expect(none).toMatchObject({ exitCode: 0, body: 'no running instance of nope\n' });
  });

  it('HEALTHZ and READYZ: exit 0 when fine, 1 when a check fails', async () => {
    const broker = fakeBroker();
    const ok = await ask({ verb: AdminVerb.HEALTHZ }, broker);
    expect(ok.exitCode).toBe(0);
    expect(ok.body).toBe(
      'healthy\nPASS  listening    accepting on the broker socket\nPASS  fd headroom  3% of the fd limit\n',
    );
    broker.healthy = false;
    const bad = await json({ verb: AdminVerb.HEALTHZ }, broker);
    expect(bad.reply.exitCode).toBe(1);
    expect(bad.body).toMatchObject({ healthy: false, checks: [{ ok: true }, { ok: false }] });
    expect(await ask({ verb: AdminVerb.READYZ }, broker)).toMatchObject({
      exitCode: 1,
      body: 'not ready: draining\n',
    });
    broker.healthy = true;
    expect((await json({ verb: AdminVerb.READYZ }, broker)).body).toEqual({
      schema_version: 1,
      ready: true,
      reason: '',
    });
  });

  it('BACKEND_HEALTH passes the service name, or none for all', async () => {
    const broker = fakeBroker();
    const seen: (string | undefined)[] = [];
    const backendHealth = broker.backendHealth;
    broker.backendHealth = (name) => {
      seen.push(name);
      return backendHealth(name);
    };
    const one = await json({ verb: AdminVerb.BACKEND_HEALTH, serviceName: 'demo-kv' }, broker);
    expect(one.body).toMatchObject({
      healthy: true,
      backends: [{ service: 'demo-kv', round_trip_ms: 0.25 }],
    });
    const all = await ask({ verb: AdminVerb.BACKEND_HEALTH }, broker);
    expect(all.body.split('\n')[1]).toMatch(/^PASS\s+demo-kv\s+1\.2\.0\s+4242\s+0\.25 ms$/);
    expect(seen).toEqual(['demo-kv', undefined]);
  });

  it('a provider AdminError is a usage answer (exit 2), any other throw a failure (exit 1)', async () => {
    const broker = fakeBroker();
    broker.backendHealth = async (name) => {
      throw new AdminError('SERVICE_UNKNOWN', `no service named ${name}`);
    };
    const unknown = await json({ verb: AdminVerb.BACKEND_HEALTH, serviceName: 'zzz' }, broker);
    expect(unknown.reply.exitCode).toBe(2);
    expect(unknown.body).toEqual({
      schema_version: 1,
      error: { code: 'SERVICE_UNKNOWN', message: 'no service named zzz' },
    });
    broker.status = () => {
      throw new Error('registry unavailable');
    };
    expect(await ask({ verb: AdminVerb.STATUS }, broker)).toMatchObject({
      exitCode: 1,
      kind: AdminReplyKind.TEXT,
      body: 'STATUS failed: registry unavailable\n',
    });
  });

  it('CONFIG: JSON as given by the provider, text as dotted keys', async () => {
    const { body } = await json({ verb: AdminVerb.CONFIG });
    expect(body).toEqual({
      schema_version: 1,
      socket_path: '/run/user/1000/handoff/broker.sock',
      services: { 'demo-kv': { versions: ['1.2.0'] } },
    });
    const text = await ask({ verb: AdminVerb.CONFIG });
    expect(text.body).toBe(
      [
        'socket_path                "/run/user/1000/handoff/broker.sock"',
        'services.demo-kv.versions  ["1.2.0"]',
        '',
      ].join('\n'),
    );
  });

  it('METRICS: OpenMetrics with its content type, whatever `json` says', async () => {
    for (const asJson of [false, true]) {
      const reply = await ask({ verb: AdminVerb.METRICS, json: asJson });
      expect(reply).toEqual({
        kind: AdminReplyKind.OPENMETRICS,
        body: '# TYPE connections_open gauge\nconnections_open 3\n# EOF\n',
        exitCode: 0,
        contentType: OPENMETRICS_CONTENT_TYPE,
      });
    }
  });

  it('SHUTDOWN: passes the drain deadline (0 means the default) and refuses an absurd one', async () => {
    const broker = fakeBroker();
    expect((await ask({ verb: AdminVerb.SHUTDOWN, drainDeadlineMs: 250n }, broker)).body).toBe(
      'shutting down: draining for up to 250 ms\n',
    );
    const { body } = await json({ verb: AdminVerb.SHUTDOWN }, broker);
    expect(body).toEqual({
      schema_version: 1,
      shutting_down: true,
      drain_deadline_ms: DEFAULT_DRAIN_DEADLINE_MS,
    });
    const tooLong = await ask(
      { verb: AdminVerb.SHUTDOWN, drainDeadlineMs: BigInt(MAX_DRAIN_DEADLINE_MS) + 1n },
      broker,
    );
    expect(tooLong.exitCode).toBe(2);
    expect(broker.shutdowns).toEqual([250, DEFAULT_DRAIN_DEADLINE_MS]);
  });

  it('DUMP and DIAGNOSE: not supported yet, exit 2, with the verb named', async () => {
    for (const verb of [AdminVerb.DUMP, AdminVerb.DIAGNOSE]) {
      const { reply, body } = await json({ verb });
      expect(reply.exitCode).toBe(2);
      expect(body).toEqual({
        schema_version: 1,
        error: {
          code: 'NOT_SUPPORTED',
          message: `${AdminVerb[verb]} is not supported by this broker yet`,
          verb: AdminVerb[verb],
        },
      });
    }
  });

  it('UNSPECIFIED and unknown verbs: exit 2 with the known verbs listed', async () => {
    const none = await ask({ verb: AdminVerb.UNSPECIFIED });
    expect(none.exitCode).toBe(2);
    expect(none.body).toBe(
      'no admin verb given; known verbs: STATUS, DUMP, LIST_INSTANCES, HEALTHZ, READYZ, BACKEND_HEALTH, CONFIG, DIAGNOSE, METRICS, SHUTDOWN, UPGRADE, RESTART, CACHE_SESSION\n',
    );
    const { reply, body } = await json({ verb: 99 as AdminVerb });
    expect(reply.exitCode).toBe(2);
    expect(body).toMatchObject({ error: { code: 'UNKNOWN_VERB', verb: 99 } });
    expect((body.error as { message: string }).message).toMatch(
      /^unknown admin verb 99; known verbs: STATUS/,
    );
  });
});
