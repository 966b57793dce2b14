import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, runCli, USAGE } from '../src/cli.js';
import { listFiles, tempDir } from './harness.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir('cli');
});
afterEach(() => tmp.remove());

async function run(...argv: string[]) {
  const io = { out: '', err: '', cwd: tmp.dir };
  const code = await runCli(argv, {
    stdout: (t) => {
      io.out += t;
    },
    stderr: (t) => {
      io.err += t;
    },
    cwd: tmp.dir,
  });
  return { code, out: io.out, err: io.err };
}

describe('create-daemon', () => {
  it('--help prints the usage and exits 0', async () => {
    expect(await run('--help')).toEqual({ code: EXIT_OK, out: USAGE, err: '' });
    expect(USAGE).toContain('--template NAME');
  });

  it.each([
    [[], 'a directory is required'],
    [['a', 'b'], 'one directory only'],
    [['a', '--template', 'huge'], 'unknown template "huge"'],
    [['a', '--bogus'], "Unknown option '--bogus'"],
    [['Not A Name'], 'must start with a lowercase letter'],
  ])('%j is a usage error (exit 2), nothing written', async (argv, message) => {
    const result = await run(...argv);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.out).toBe('');
    expect(result.err).toContain(message);
    expect(listFiles(tmp.dir)).toEqual([]);
  });

  it('prints next steps that start from where it ran', async () => {
    const result = await run('my-daemon');
    expect(result.code).toBe(EXIT_OK);
    expect(result.err).toBe('');
    expect(result.out).toContain(`Created ${join(tmp.dir, 'my-daemon')} (template minimal)`);
    expect(result.out).toContain('\n  cd my-daemon && npm install && npm test && npm start\n');
  });

  it('--json: one object with the files and the next steps', async () => {
    const result = await run('sub/cache-daemon', '--template', 'kv', '--json');
    expect(result.code).toBe(EXIT_OK);
    const summary = JSON.parse(result.out);
    expect(summary).toMatchObject({
      schema_version: 1,
      dir: join(tmp.dir, 'sub', 'cache-daemon'),
      template: 'kv',
      service: 'cache',
      package: 'cache-daemon',
      executables: { client: 'cache', daemon: 'cache-daemon' },
      next_steps: ['cd sub/cache-daemon', 'npm install', 'npm test', 'npm start'],
    });
    expect(summary.files).toEqual(listFiles(join(tmp.dir, 'sub', 'cache-daemon')));
  });

  it('refuses a non-empty directory with exit 1, and says why in JSON too', async () => {
    await run('my-daemon');
    const before = listFiles(tmp.dir);
    const again = await run('my-daemon', '--json');
    expect(again.code).toBe(EXIT_FAILED);
    expect(again.err).toMatch(/^create-daemon: .*my-daemon is not empty/);
    expect(JSON.parse(again.out)).toMatchObject({ error: { code: 'TARGET_NOT_EMPTY' } });
    expect(listFiles(tmp.dir)).toEqual(before);
  });

  it('runs as an executable', () => {
    const main = join(import.meta.dirname, '..', 'src', 'main.ts');
    const child = spawnSync(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), main, 'p-daemon'],
      {
        cwd: tmp.dir,
        encoding: 'utf8',
      },
    );
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(child.stdout).toContain('cd p-daemon && npm install && npm test && npm start');
    expect(listFiles(join(tmp.dir, 'p-daemon'))).toContain('src/service.ts');
  });
});
