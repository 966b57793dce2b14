import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readWorkspace } from '../src/workspace.js';
import { makeRepository, tempDir } from './harness.js';

const tmp = tempDir('scaffold-ws');
afterAll(() => tmp.remove());

function write(path: string, text: string) {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

describe('readWorkspace', () => {
  it('reads names, executables, services and protocol ids from metadata and sources', () => {
    const root = tmp.path('repo');
    makeRepository(root);
    write(
      join(root, 'apps', 'legacy', 'package.json'),
      '{"name":"@handoff/legacy","bin":"./x.js"}',
    );
    write(
      join(root, 'apps', 'legacy', 'src', 'wire.ts'),
      "export const P = definePayloadProtocol('legacy', 0xF0AA);",
    );
    write(
      join(root, 'apps', 'legacy', 'src', 'generated', 'x.js'),
      'definePayloadProtocol("g", 0xF0BB)',
    );
    write(join(root, 'apps', '.half.staging-1', 'package.json'), '{"name":"@handoff/half"}');
    write(
      join(root, 'packages', 'broker', 'package.json'),
      '{"name":"@handoff/broker","bin":{"handoff-broker":"x"}}',
    );
    mkdirSync(join(root, 'tools', 'ci'), { recursive: true });

    const facts = readWorkspace(root);
    expect(facts.appEntries).toEqual(['.half.staging-1', 'demo-daemon', 'legacy']);
    expect(facts.projects).toEqual([
      {
        group: 'apps',
        dir: 'demo-daemon',
        packageName: '@handoff/demo-daemon',
        bins: ['demo-kv', 'demo-daemon'],
        service: 'demo-kv',
      },
      {
        group: 'apps',
        dir: 'legacy',
        packageName: '@handoff/legacy',
        bins: ['legacy'],
        service: undefined,
      },
      {
        group: 'packages',
        dir: 'broker',
        packageName: '@handoff/broker',
        bins: ['handoff-broker'],
        service: undefined,
      },
      { group: 'tools', dir: 'ci', packageName: undefined, bins: [], service: undefined },
    ]);
    expect(facts.protocolIds).toEqual([
      { id: 0xf0d0, app: 'demo-daemon', where: 'package.json' },
      { id: 0xf0d0, app: 'demo-daemon', where: 'src/kv-protocol.ts' },
      { id: 0xf0aa, app: 'legacy', where: 'src/wire.ts' },
    ]);
  });

  it('names the file when a package.json or its metadata is broken', () => {
    const root = tmp.path('broken');
    write(join(root, 'apps', 'a', 'package.json'), '{ not json');
    expect(() => readWorkspace(root)).toThrow(/apps\/a\/package\.json is not valid JSON/);
    write(join(root, 'apps', 'a', 'package.json'), '{"handoff":{"payloadProtocol":"F0A1"}}');
    expect(() => readWorkspace(root)).toThrow(
      /apps\/a\/package\.json: handoff\.payloadProtocol: protocol id "F0A1" is neither hex/,
    );
  });
});
