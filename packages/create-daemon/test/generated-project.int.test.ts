// Generated projects, outside the repository, do what they say: they
// typecheck, the minimal one's tests pass (a real broker starts its daemon
// and hands a client to it), and the kv one's shipped protobuf code is what
// its own `npm run generate` makes. Their node_modules is a link to the
// repository's, with our packages run from their sources (no build needed,
// as in `npm test`); installing the published packages from a registry is
// tools/release/test/create-daemon.e2e.ts's.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject } from '../src/create.js';
import { repoRoot, tempDir } from './harness.js';

const tmp = tempDir('projects');
afterAll(() => tmp.remove());

/** Without vitest's markers (a nested vitest starts clean); our packages from source. */
const env = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !key.startsWith('VITEST') && key !== 'FORCE_COLOR',
    ),
  ),
  NO_COLOR: '1',
  NODE_OPTIONS: '--conditions=@handoff/source --import tsx',
};

/**
 * The project's tests with @handoff/* resolved to the workspace's sources
 * (vite's resolver ignores NODE_OPTIONS' conditions, and before a build the
 * packages have no dist/). The registry e2e runs the project's own config
 * against the published packages.
 */
function vitestFromSource(dir: string, files: readonly string[] = []) {
  const config = join(dir, 'vitest.source.config.mts');
  const conditions = ['@handoff/source', 'module', 'node', 'import', 'default'];
  writeFileSync(
    config,
    `import { defineConfig } from 'vitest/config';\n` +
      `const conditions = ${JSON.stringify(conditions)};\n` +
      `export default defineConfig({ resolve: { conditions }, ssr: { resolve: { conditions, externalConditions: ['@handoff/source'] } }, ` +
      `test: { include: ['test/**/*.test.ts'], exclude: ['**/node_modules/**'], pool: 'forks', testTimeout: 120000, hookTimeout: 60000 } });\n`,
  );
  return exec(bin('vitest'), ['run', '--config', config, ...files], dir);
}

async function exec(file: string, args: readonly string[], cwd: string) {
  const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const [code] = await once(child, 'close');
  return { code: code as number | null, output };
}

const bin = (tool: string) => join(repoRoot, 'node_modules', '.bin', tool);

function generate(target: string, template: 'minimal' | 'kv'): string {
  const plan = createProject({ target, cwd: tmp.dir, template });
  symlinkSync(join(repoRoot, 'node_modules'), join(plan.dir, 'node_modules'));
  return plan.dir;
}

describe('a generated minimal project', () => {
  let dir: string;
  beforeAll(() => {
    dir = generate('hello-daemon', 'minimal');
  });

  it('typechecks', async () => {
    const tsc = await exec(
      bin('tsc'),
      ['-p', 'tsconfig.json', '--customConditions', '@handoff/source'],
      dir,
    );
    expect(tsc).toEqual({ code: 0, output: '' });
  });

  it('passes its own tests', async () => {
    const vitest = await vitestFromSource(dir);
    expect(vitest.output).toMatch(/Tests\s+6 passed \(6\)/);
    expect(vitest.code, vitest.output.slice(-3000)).toBe(0);
  });
});

describe('a generated kv project', () => {
  let dir: string;
  beforeAll(() => {
    dir = generate('cache-daemon', 'kv');
  });

  it('typechecks', async () => {
    const tsc = await exec(
      bin('tsc'),
      ['-p', 'tsconfig.json', '--customConditions', '@handoff/source'],
      dir,
    );
    expect(tsc).toEqual({ code: 0, output: '' });
  });

  it('ships the protobuf code its own generate script makes from its renamed proto', async () => {
    const vitest = await vitestFromSource(dir, [
      'test/generated.test.ts',
      'test/service-definition.test.ts',
    ]);
    expect(vitest.output).toMatch(/Tests\s+3 passed \(3\)/);
    expect(vitest.code, vitest.output.slice(-3000)).toBe(0);
  });
});
