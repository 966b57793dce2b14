// withSidecars: which definitions rediscovery looks at, from one listing of
// the services directory — those with an identity sidecar on either slot.
import { writeFileSync } from 'node:fs';
import { tempDir } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServiceDefinition, type ServiceDefinition } from '../src/config/definition.js';
import { endpointSlots } from '../src/lifecycle/daemon-start.js';
import { withSidecars } from '../src/rediscover-candidates.js';

const def = (name: string): ServiceDefinition =>
  parseServiceDefinition({ name, version: '1.0.0', command: '/usr/bin/true' }, '/cfg/x.json');

describe('withSidecars', () => {
  const dirs: { remove(): void }[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.remove();
  });

  it('keeps, in order, the definitions with a sidecar on either slot', async () => {
    const tmp = tempDir('rediscover-candidates');
    dirs.push(tmp);
    const defs = ['a', 'b', 'c', 'd'].map(def);
    const slots = (d: ServiceDefinition) => endpointSlots(tmp.dir, d);
    writeFileSync(`${slots(defs[0]!)[0]}.identity.json`, '{}');
    writeFileSync(`${slots(defs[2]!)[1]}.identity.json`, '{}');
    // A socket file alone, or a sidecar of another name, is not a candidate.
    writeFileSync(slots(defs[1]!)[0], '');
    writeFileSync(`${tmp.dir}/e-1.0.0.sock.identity.json`, '{}');
    const kept = await withSidecars(tmp.dir, defs, slots);
    expect(kept.map((d) => d.name)).toEqual(['a', 'c']);
  });

  it('finds nothing in a services directory that does not exist', async () => {
    const tmp = tempDir('rediscover-candidates');
    dirs.push(tmp);
    const missing = tmp.path('absent');
    expect(await withSidecars(missing, [def('a')], (d) => endpointSlots(missing, d))).toEqual([]);
  });

  it('leaves every definition to rediscovery when the directory cannot be listed', async () => {
    const tmp = tempDir('rediscover-candidates');
    dirs.push(tmp);
    // A file where the directory should be: ENOTDIR, not ENOENT.
    const notDir = tmp.path('file');
    writeFileSync(notDir, '');
    const defs = [def('a'), def('b')];
    expect(await withSidecars(notDir, defs, (d) => endpointSlots(notDir, d))).toEqual(defs);
  });
});
