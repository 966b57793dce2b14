// The broker's JSON replies held to the CLI contract (src/cli/output.ts
// contractDocument): schema_version then ok first; on failure code and
// message, lifted from the body's `error` or supplied; other text unchanged.
import { describe, expect, it } from 'vitest';
import { contractDocument } from '../../src/cli/output.js';

const doc = (body: unknown, exit: number, failure?: Parameters<typeof contractDocument>[2]) =>
  JSON.parse(contractDocument(JSON.stringify(body), exit, failure)) as Record<string, unknown>;

describe('contractDocument', () => {
  it('adds ok from the exit code, after schema_version, keeping the body', () => {
    const ok = doc({ schema_version: 1, pid: 7 }, 0);
    expect(Object.keys(ok)).toEqual(['schema_version', 'ok', 'pid']);
    expect(ok).toEqual({ schema_version: 1, ok: true, pid: 7 });
  });

  it('lifts an admin error’s code and message to the top', () => {
    const refused = doc({ schema_version: 1, error: { code: 'USAGE', message: 'too long' } }, 2);
    expect(refused).toMatchObject({ ok: false, code: 'USAGE', message: 'too long' });
  });

  it('asks `failure` for a failed body that names no code (healthz: UNHEALTHY)', () => {
    const sick = doc({ schema_version: 1, healthy: false }, 1, () => ({
      code: 'UNHEALTHY',
      message: 'unhealthy: fd headroom',
    }));
    expect(sick).toEqual({
      schema_version: 1,
      ok: false,
      code: 'UNHEALTHY',
      message: 'unhealthy: fd headroom',
      healthy: false,
    });
  });

  it('keeps a body’s own ok, code and message (list: NOT_RUNNING is ok)', () => {
    const idle = doc({ schema_version: 1, ok: true, code: 'NOT_RUNNING', message: 'idle' }, 0);
    expect(idle).toEqual({ schema_version: 1, ok: true, code: 'NOT_RUNNING', message: 'idle' });
  });

  it('passes a body that is not a JSON object through, ending its line', () => {
    expect(contractDocument('plain words', 1)).toBe('plain words\n');
    expect(contractDocument('[1,2]', 0)).toBe('[1,2]\n');
  });
});
