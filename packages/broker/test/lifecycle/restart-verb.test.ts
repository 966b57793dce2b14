// The RESTART verb through the admin dispatcher (admin.ts +
// lifecycle/restart-verb.ts): what it asks the provider for (name@version,
// deadlines, 0 = the definition's), its JSON and text replies, RestartError
// as exit 1 with its code, usage limits as exit 2, and no provider as
// NOT_SUPPORTED. The restarts themselves run in restart.int.test.ts.
import { AdminRequest, AdminVerb } from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import { handleAdminRequest } from '../../src/admin.js';
import type { AdminProvider } from '../../src/admin-provider.js';
import type { RestartProvider, RestartReport } from '../../src/lifecycle/restart-verb.js';
import { RestartError } from '../../src/lifecycle/rolling-restart.js';

const report: RestartReport = {
  service: 'kv',
  version: '1.2.3',
  oldPid: 10,
  newPid: 20,
  endpoint: '/run/kv-1.2.3.b.sock',
  tookMs: 42,
  drainMs: 30_000,
};

function ask(restart: RestartProvider | undefined, request: Partial<AdminRequest>) {
  const provider = (restart ? { restart } : {}) as unknown as AdminProvider;
  return handleAdminRequest(AdminRequest.create({ verb: AdminVerb.RESTART, ...request }), provider);
}

describe('RESTART', () => {
  it('passes name, version and deadlines (0: the definition’s), and answers old pid → new pid', async () => {
    const asked: unknown[] = [];
    const restart: RestartProvider = async (target, options, done) => {
      asked.push(target, options);
      done.push(report);
    };
    const json = await ask(restart, {
      serviceName: 'kv@1.2.3',
      json: true,
      drainDeadlineMs: 500n,
      readyDeadlineMs: 0n,
    });
    expect(asked).toEqual([
      { serviceName: 'kv', version: '1.2.3' },
      { readyDeadlineMs: undefined, drainMs: 500 },
    ]);
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.body)).toMatchObject({
      schema_version: 1,
      ok: true,
      code: 'RESTARTED',
      restarted: [{ service: 'kv', version: '1.2.3', old_pid: 10, new_pid: 20, took_ms: 42 }],
    });
    const text = await ask(restart, { serviceName: 'kv' });
    expect(text.exitCode).toBe(0);
    expect(text.body).toBe(
      'kv@1.2.3: pid 10 → 20 in 42 ms (the old one drains for up to 30000 ms)\n',
    );
    expect(asked[2]).toEqual({ serviceName: 'kv', version: undefined });
  });

  it('answers a RestartError with exit 1, its code and the replacement’s output', async () => {
    const restart: RestartProvider = async () => {
      throw new RestartError('PROBE_FAILED', 'kv@1.2.3', 'probe failed', 'boom\n');
    };
    const json = await ask(restart, { serviceName: 'kv', json: true });
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.body)).toMatchObject({
      ok: false,
      code: 'PROBE_FAILED',
      message: 'probe failed',
      service: 'kv@1.2.3',
      output_tail: 'boom\n',
      error: { code: 'PROBE_FAILED' },
    });
    const text = await ask(restart, { serviceName: 'kv' });
    expect(text.body).toBe('restart failed (PROBE_FAILED): probe failed\nits last output:\nboom\n');
  });

  it('refuses absurd deadlines and a missing name (exit 2), and is NOT_SUPPORTED without a provider', async () => {
    const never: RestartProvider = async () => {
      throw new Error('not called');
    };
    for (const request of [
      { serviceName: 'kv', drainDeadlineMs: 10n ** 12n },
      { serviceName: 'kv', readyDeadlineMs: 10n ** 12n },
      { serviceName: '' },
    ]) {
      const reply = await ask(never, { ...request, json: true });
      expect(reply.exitCode).toBe(2);
      expect(JSON.parse(reply.body).code).toBe('USAGE');
    }
    const unserved = await ask(undefined, { serviceName: 'kv', json: true });
    expect(unserved.exitCode).toBe(2);
    expect(JSON.parse(unserved.body).code).toBe('NOT_SUPPORTED');
  });
});
