import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDoctor, type ServiceDefinitionLoader } from '../../src/cli/doctor.js';
import { fakeBroker, startAdminServer, tempDir } from '../admin-harness.js';

const tmp = tempDir('doctor');
afterAll(() => tmp.remove());

describe('runDoctor', () => {
  it('passes everything for a private directory, a live healthy broker and loadable definitions', async () => {
    const dir = tmp.path('ok');
    mkdirSync(dir, { mode: 0o700 });
    const socketPath = join(dir, 'broker.sock');
    const server = await startAdminServer(socketPath, fakeBroker(socketPath));
    chmodSync(socketPath, 0o600); // as the broker leaves it; wider is a WARN
    const sources: unknown[] = [];
    const loadServices: ServiceDefinitionLoader = async (source) => {
      sources.push(source);
      return { services: [{}, {}], errors: [] };
    };
    try {
      const checks = await runDoctor({ socketPath, loadServices, configDir: '/etc/handoff' });
      expect(checks.map((c) => [c.verdict, c.name])).toEqual([
        ['PASS', 'socket directory'],
        ['PASS', 'directory owner'],
        ['PASS', 'directory mode'],
        ['PASS', 'broker socket'],
        ['PASS', 'broker health'],
        ['PASS', 'service definitions'],
      ]);
      expect(checks.at(-1)?.detail).toBe('2 loaded from /etc/handoff');
      expect(sources).toEqual([{ dir: '/etc/handoff' }]);
    } finally {
      await server.close();
    }
  });

  it('reports each definition error, and a loader that throws, as FAIL', async () => {
    const socketPath = tmp.path('missing/broker.sock');
    const errors = await runDoctor({
      socketPath,
      loadServices: () => ({
        services: [],
        errors: [
          { file: '/c/a.json', field: 'services[0].name', message: 'is not a service name' },
          { file: '/c/b.json', message: '/c/b.json: not JSON' },
        ],
      }),
    });
    expect(errors[0]).toMatchObject({ verdict: 'WARN', name: 'socket directory' });
    expect(errors.filter((c) => c.name === 'service definitions')).toEqual([
      {
        name: 'service definitions',
        verdict: 'FAIL',
        detail: '/c/a.json: services[0].name: is not a service name',
      },
      { name: 'service definitions', verdict: 'FAIL', detail: '/c/b.json: not JSON' },
    ]);
    const thrown = await runDoctor({
      socketPath,
      loadServices: () => {
        throw new Error('EACCES');
      },
    });
    expect(thrown.at(-1)).toEqual({
      name: 'service definitions',
      verdict: 'FAIL',
      detail: 'cannot load: EACCES',
    });
  });
});
