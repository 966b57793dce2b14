import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CreateError, createProject, defaultName, planProject } from '../src/create.js';
import { deriveProtocolId, formatProtocolId } from '../src/rename/protocol-id.js';
import { collectVersions } from '../src/versions.js';
import { listFiles, readJson, repoRoot, tempDir, workspaceVersion } from './harness.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir('create');
});
afterEach(() => tmp.remove());

const MINIMAL_FILES = [
  '.gitignore',
  'README.md',
  'package.json',
  'src/cli.ts',
  'src/client.ts',
  'src/daemon-main.ts',
  'src/daemon.ts',
  'src/handler.ts',
  'src/serve.ts',
  'src/service-definition.ts',
  'src/service.ts',
  'test/broker.test.ts',
  'test/daemon.test.ts',
  'tsconfig.json',
  'vitest.config.ts',
];

/** What a standalone project must not hold: anything that needs the handoff repository. */
function expectStandalone(dir: string) {
  for (const file of listFiles(dir)) {
    const text = readFileSync(join(dir, file), 'utf8');
    expect(text, file).not.toMatch(
      /@handoff\/(?:source|codegen|scaffold)|\.\.\/\.\.\/\.\.|file:|"\*"/,
    );
    expect(text, file).not.toContain(repoRoot);
  }
  const tsconfig = readJson(join(dir, 'tsconfig.json'));
  expect(tsconfig.extends).toBeUndefined();
  expect(tsconfig.compilerOptions).toMatchObject({
    strict: true,
    module: 'nodenext',
    moduleResolution: 'nodenext',
  });
  expect(tsconfig.compilerOptions.customConditions).toBeUndefined();
  const manifest = readJson(join(dir, 'package.json'));
  const ranges = { ...manifest.dependencies, ...manifest.devDependencies };
  for (const [name, range] of Object.entries(ranges)) {
    // A semver range, never a path, a tag or "*".
    expect(range, name).toMatch(/^[\^~]?\d+\.\d+\.\d+$/);
  }
  expect(manifest.devDependencies).toMatchObject({
    typescript: '~5.9.3',
    vitest: '^4.1.12',
    '@types/node': '^20.19.0',
  });
  expect(manifest.devDependencies.tsx).toBeDefined();
  expect(manifest.engines).toEqual({ node: '^20.19.0 || >=22.12.0' });
  return manifest;
}

describe('the minimal template', () => {
  it('writes a standalone project depending on the current published versions', () => {
    const plan = createProject({ target: 'my-daemon', cwd: tmp.dir });
    const dir = tmp.path('my-daemon');
    expect(plan).toMatchObject({ dir, template: 'minimal', packageName: 'my-daemon' });
    expect(plan.forms.kebab).toBe('my');
    expect(listFiles(dir)).toEqual(MINIMAL_FILES);
    const manifest = expectStandalone(dir);
    expect(manifest).toMatchObject({ name: 'my-daemon', private: true, type: 'module' });
    expect(manifest.dependencies).toEqual({
      '@handoff/backend-sdk': `^${workspaceVersion('backend-sdk')}`,
      '@handoff/broker': `^${workspaceVersion('broker')}`,
      '@handoff/protocol': `^${workspaceVersion('protocol')}`,
      pino: expect.stringMatching(/^\^\d/),
    });
    expect(Object.keys(manifest.scripts).sort()).toEqual(['client', 'start', 'test', 'typecheck']);
    const service = readFileSync(join(dir, 'src', 'service.ts'), 'utf8');
    expect(service).toContain(`export const SERVICE_NAME = 'my';`);
    expect(service).toContain(
      `definePayloadProtocol(SERVICE_NAME, ${formatProtocolId(deriveProtocolId('my'))})`,
    );
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).not.toMatch(/\{\{|\}\}/);
  });

  it('takes a path, a name of its own, and an empty directory', () => {
    mkdirSync(tmp.path('deep', 'empty'), { recursive: true });
    const plan = createProject({ target: 'deep/empty', cwd: tmp.dir, name: 'sensor-hub' });
    expect(plan.forms.kebab).toBe('sensor-hub');
    expect(plan.packageName).toBe('empty');
    expect(listFiles(tmp.path('deep', 'empty'))).toEqual(MINIMAL_FILES);
  });

  it('derives the same id from the same name, in the private range, never the demo’s', () => {
    for (const name of ['my', 'sensor-hub', 'a', 'x-1']) {
      const id = deriveProtocolId(name);
      expect(id).toBe(deriveProtocolId(name));
      expect(id).toBeGreaterThan(0xf000);
      expect(id).toBeLessThanOrEqual(0xffff);
      expect([0xf0d0, 0xf0d1]).not.toContain(id);
    }
    expect(deriveProtocolId('my')).not.toBe(deriveProtocolId('mx'));
  });
});

describe('the kv template', () => {
  it('is the demo daemon under the new names, standalone', () => {
    const plan = createProject({ target: 'cache-daemon', cwd: tmp.dir, template: 'kv' });
    const dir = tmp.path('cache-daemon');
    expect(plan.executables).toEqual({ client: 'cache', daemon: 'cache-daemon' });
    const files = listFiles(dir);
    expect(files).toEqual(
      expect.arrayContaining([
        '.gitignore',
        'README.md',
        'package.json',
        'proto/cache_v1.proto',
        'scripts/generate.mjs',
        'src/daemon.ts',
        'src/generated/cache_v1.d.ts',
        'src/generated/cache_v1.js',
        'src/serve.ts',
        'test/cache.int.test.ts',
        'test/generated.test.ts',
        'tsconfig.build.json',
        'tsconfig.json',
        'vitest.config.ts',
      ]),
    );
    // The repository's own campaigns stay behind.
    expect(files.filter((f) => /fuzz|corpus|issue-12|line-capture/.test(f))).toEqual([]);
    const manifest = expectStandalone(dir);
    expect(manifest.bin).toEqual({
      cache: './dist/cli/main.js',
      'cache-daemon': './dist/daemon-main.js',
    });
    expect(manifest.devDependencies['protobufjs-cli']).toMatch(/^\^\d/);
    expect(manifest.scripts.generate).toBe('node scripts/generate.mjs');
    for (const file of files) {
      expect(readFileSync(join(dir, file), 'utf8'), file).not.toMatch(/demo|0xf0d0|0xF0D0/i);
    }
    const id = formatProtocolId(deriveProtocolId('cache'));
    expect(readFileSync(join(dir, 'src', 'kv-protocol.ts'), 'utf8')).toContain(
      `definePayloadProtocol('cache', ${id.toLowerCase().replace('0X', '0x')})`,
    );
  });

  it('refuses a name that would collide with one of its identifiers', () => {
    expect(() => planProject({ target: 'kv-daemon', cwd: tmp.dir, template: 'kv' })).toThrow(
      expect.objectContaining({ code: 'NAME_CLASH' }),
    );
    expect(existsSync(tmp.path('kv-daemon'))).toBe(false);
  });
});

describe('refusals', () => {
  it('never writes into a directory that has anything in it', () => {
    mkdirSync(tmp.path('taken'));
    writeFileSync(tmp.path('taken', 'notes.txt'), 'mine');
    let error: unknown;
    try {
      createProject({ target: 'taken', cwd: tmp.dir });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CreateError);
    expect(error).toMatchObject({ code: 'TARGET_NOT_EMPTY' });
    expect(listFiles(tmp.path('taken'))).toEqual(['notes.txt']);
  });

  it('refuses a file where the directory would go', () => {
    writeFileSync(tmp.path('a-file'), '');
    expect(() => createProject({ target: 'a-file', cwd: tmp.dir })).toThrow(
      expect.objectContaining({ code: 'TARGET_NOT_DIRECTORY' }),
    );
  });

  it('refuses a name the broker or the generated code cannot carry, as a usage error', () => {
    for (const [target, name] of [
      ['Bad Name', undefined],
      ['ok', 'class'],
      ['ok', 'x'.repeat(25)],
      ['ok', 'ends-'],
    ] as const) {
      let error: unknown;
      try {
        planProject({ target, cwd: tmp.dir, name });
      } catch (e) {
        error = e;
      }
      expect(error, `${target} ${name}`).toMatchObject({ code: 'BAD_NAME', isUsageError: true });
    }
    expect(listFiles(tmp.dir)).toEqual([]);
  });
});

describe('names and versions', () => {
  it('drops a trailing -daemon from the directory for the service name', () => {
    expect(defaultName('/x/my-daemon')).toBe('my');
    expect(defaultName('/x/sensor-hub')).toBe('sensor-hub');
    expect(defaultName('/x/-daemon')).toBe('-daemon');
  });

  it('reads our packages’ versions as caret ranges, and the repository’s own pins', () => {
    const versions = collectVersions(repoRoot);
    const root = readJson(join(repoRoot, 'package.json'));
    expect(versions).toMatchObject({
      '@handoff/broker': `^${workspaceVersion('broker')}`,
      typescript: root.devDependencies.typescript,
      vitest: root.devDependencies.vitest,
      '@types/node': root.devDependencies['@types/node'],
    });
  });

  it('keeps every planned file inside the project', () => {
    for (const template of ['minimal', 'kv'] as const) {
      const plan = planProject({ target: 'p-daemon', cwd: tmp.dir, template, name: 'sensor-hub' });
      for (const file of plan.files) {
        expect(relative(plan.dir, join(plan.dir, file.path)).startsWith('..'), file.path).toBe(
          false,
        );
      }
    }
  });
});
