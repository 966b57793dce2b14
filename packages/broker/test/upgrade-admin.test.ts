// The UPGRADE admin verb's replies (src/admin.ts): the JSON and text a
// finished upgrade answers with, the failure document with the reason's
// code (exit 1), a deadline over the maximum (exit 2), and a broker that
// cannot upgrade (not served: exit 2). The upgrade itself is tested with
// real processes in upgrade*.int.test.ts.
import { AdminRequest, AdminVerb } from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import { handleAdminRequest } from '../src/admin.js';
import type { AdminProvider, UpgradeReport } from '../src/admin-provider.js';
import { UpgradeError } from '../src/upgrade/errors.js';
import { fakeBroker } from './admin-harness.js';

const report: UpgradeReport = { oldPid: 100, newPid: 200, switchMs: 12.345, totalMs: 1500.4 };

function provider(upgrade?: AdminProvider['upgrade']): AdminProvider {
  const base = fakeBroker();
  return upgrade === undefined ? base : { ...base, upgrade };
}

const ask = (p: AdminProvider, request: Partial<AdminRequest>) =>
  handleAdminRequest(AdminRequest.create({ verb: AdminVerb.UPGRADE, ...request }), p);

describe('UPGRADE', () => {
  it('answers old pid → new pid and how long clients waited, in JSON and text', async () => {
    const asked: number[] = [];
    const p = provider(async (ms) => {
      asked.push(ms);
      return report;
    });
    const json = await ask(p, { json: true, readyDeadlineMs: 2500n });
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.body)).toEqual({
      schema_version: 1,
      ok: true,
      code: 'UPGRADED',
      message: expect.stringContaining('pid 100 → 200'),
      old_pid: 100,
      new_pid: 200,
      switch_ms: 12.345,
      total_ms: 1500.4,
    });
    const text = await ask(p, {});
    expect(text.exitCode).toBe(0);
    expect(text.body).toBe('upgraded: pid 100 → 200, clients waited 12.3 ms (1500 ms in all)\n');
    expect(asked).toEqual([2500, 0]);
  });

  it('fails with the UpgradeError code and says the broker keeps serving', async () => {
    const p = provider(async () => {
      throw new UpgradeError('SUCCESSOR_TIMEOUT', 'the successor was not ready within 10 ms');
    });
    const json = await ask(p, { json: true });
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.body)).toMatchObject({
      ok: false,
      code: 'SUCCESSOR_TIMEOUT',
      error: { code: 'SUCCESSOR_TIMEOUT' },
    });
    const text = await ask(p, {});
    expect(text.exitCode).toBe(1);
    expect(text.body).toMatch(/not ready within 10 ms; the broker keeps serving/);
  });

  it('refuses a ready deadline over the maximum (exit 2), and is not served without upgrade()', async () => {
    const over = await ask(
      provider(async () => report),
      { readyDeadlineMs: 10n ** 12n },
    );
    expect(over.exitCode).toBe(2);
    const unserved = await ask(provider(), { json: true });
    expect(unserved.exitCode).toBe(2);
  });
});
