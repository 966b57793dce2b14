// The packages as a user gets them: published to a local registry the way a
// release publishes them, then installed by name into projects outside the
// repository, on a PATH with no compiler and no make. Each package installs
// alone; a consumer type-checks against them under strict nodenext and runs
// four scenarios on real sockets and processes; CommonJS can require() them.
// The handoff-broker executable runs from the consumer's node_modules/.bin.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerProject, pathWithoutBuildTools } from '../src/consumer.ts';
import { type Registry, repoRoot, startRegistry } from '../src/registry.ts';

const consumerFixture = join(import.meta.dirname, '..', 'consumer');
const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');

/** Each public package and names a user's first line of code reaches for. */
const PACKAGES: Record<string, readonly string[]> = {
  '@handoff/protocol': ['encodeFramed', 'FrameDecoder', 'Hello', 'requestFrame'],
  '@handoff/fdpass': ['FdSocket', 'FdServer', 'peerCredentials'],
  '@handoff/backend-sdk': ['serveDaemon', 'probeDaemon', 'BrokerAttachment', 'FrameClient'],
  '@handoff/broker': ['startBroker', 'connectService', 'adminRequest'],
};

function version(dir: string): string {
  return (
    JSON.parse(readFileSync(join(repoRoot, 'packages', dir, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
}

let registry: Registry;
let noBuildTools: string;
const timings: Record<string, number> = {};

beforeAll(async () => {
  const prebuilds = join(repoRoot, 'packages', 'fdpass', 'prebuilds', `linux-${process.arch}`);
  if (!existsSync(prebuilds) || readdirSync(prebuilds).length === 0) {
    throw new Error(
      `no prebuild in ${prebuilds}: run \`npm run build:prebuild -w @handoff/fdpass\` first`,
    );
  }
  for (const dir of ['protocol', 'fdpass', 'backend-sdk', 'broker']) {
    if (!existsSync(join(repoRoot, 'packages', dir, 'dist', 'index.js'))) {
      throw new Error(`packages/${dir} is not built: run \`npx nx run-many -t build\` first`);
    }
  }
  registry = await startRegistry();
  const published = await registry.publishAll();
  for (const name of Object.keys(PACKAGES)) {
    expect(published.output, `${name} published`).toContain(name);
  }
  noBuildTools = pathWithoutBuildTools(join(registry.dir, 'bin'));
});

afterAll(async () => {
  await registry?.stop();
  console.log(JSON.stringify({ case: 'release.consumer_install_ms', ...timings }));
});

describe('published packages, installed by a user with no compiler', () => {
  it('has no compiler and no make on the consumer PATH', () => {
    const probe = spawnSync('sh', ['-c', 'command -v g++ || command -v c++ || command -v make'], {
      env: { PATH: noBuildTools },
      encoding: 'utf8',
    });
    expect(probe.stdout).toBe('');
    expect(probe.status).not.toBe(0);
  });

  for (const [name, exports] of Object.entries(PACKAGES)) {
    it(`installs ${name} alone by name and loads it from ESM and CommonJS`, () => {
      const project = ConsumerProject.create(
        registry,
        name.replace('@handoff/', 'alone-'),
        noBuildTools,
      );
      const install = project.must('npm', ['install', name]);
      timings[name] = Math.round(install.ms);
      const manifest = JSON.parse(readFileSync(join(project.dir, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
      };
      expect(Object.keys(manifest.dependencies)).toEqual([name]);
      // The addon came from the prebuild: nothing was compiled.
      const fdpass = join(project.dir, 'node_modules', '@handoff', 'fdpass');
      if (existsSync(fdpass)) expect(existsSync(join(fdpass, 'build'))).toBe(false);

      const required = project.must('node', [
        join(consumerFixture, 'require.cjs'),
        name,
        ...exports,
      ]);
      expect(required.output).toContain(`require(${name}): ok`);
      const imported = project.must('node', [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(name)}); for (const n of ${JSON.stringify(exports)}) if (m[n] === undefined) { console.error('missing ' + n); process.exit(1); } console.log('import ok');`,
      ]);
      expect(imported.output).toContain('import ok');
    });
  }

  it('runs the installed handoff-broker executable: serve is node with the broker flags, one process, stopped by SIGTERM', async () => {
    const project = ConsumerProject.create(registry, 'cli', noBuildTools);
    project.must('npm', ['install', '@handoff/broker']);
    const bin = join(project.dir, 'node_modules', '.bin', 'handoff-broker');
    expect(project.must(bin, ['--version']).output).toBe(`${version('broker')}\n`);

    const home = join(project.dir, 'home');
    mkdirSync(home, { mode: 0o700 });
    const socket = join(home, 'broker.sock');
    const env = registry.env({ PATH: noBuildTools, HANDOFF_ALLOW_ROOT: '1' });
    const serve = spawn(
      bin,
      [
        'serve',
        ...['--socket', socket, '--allow-empty', '--log-format', 'json'],
        ...['--config-dir', join(home, 'services'), '--state-dir', join(home, 'state')],
      ],
      { cwd: project.dir, env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    serve.stderr!.on('data', (d) => (log += d));
    const exited = once(serve, 'exit');
    try {
      // healthz through the same executable, until the broker answers.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const health = spawnSync(bin, ['healthz', '--socket', socket, '--json'], {
          env,
          encoding: 'utf8',
        });
        if (health.status === 0) {
          expect(JSON.parse(health.stdout)).toMatchObject({ ok: true });
          break;
        }
        if (serve.exitCode !== null || Date.now() > deadline) {
          throw new Error(`serve did not come up: ${health.stdout}${health.stderr}\n${log}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // The pid npm's bin was started as is node itself, with the flags.
      const cmdline = readFileSync(`/proc/${serve.pid}/cmdline`, 'utf8').split('\0');
      const entry = join('node_modules', '@handoff', 'broker', 'dist', 'cli', 'main.js');
      expect(cmdline.slice(1, 4)).toEqual([
        '--max-semi-space-size=4',
        join(realpathSync(project.dir), entry),
        'serve',
      ]);
    } finally {
      if (serve.exitCode === null) serve.kill('SIGTERM');
      await exited;
    }
    expect(serve.exitCode, log).toBe(0);
  });

  it('type-checks a strict nodenext consumer and runs four scenarios against the installed packages', () => {
    const project = ConsumerProject.create(registry, 'scenarios', noBuildTools);
    const wanted = Object.keys(PACKAGES).map(
      (name) => `${name}@${version(name.replace('@handoff/', ''))}`,
    );
    project.must('npm', ['install', ...wanted]);
    project.must('npm', ['install', '--save-dev', '@types/node@^20.19.0']);
    cpSync(join(consumerFixture, 'src'), join(project.dir, 'src'), { recursive: true });
    cpSync(join(consumerFixture, 'tsconfig.json'), join(project.dir, 'tsconfig.json'));

    // The repository's pinned TypeScript, checking the published .d.ts files
    // too (no skipLibCheck in the consumer's tsconfig).
    project.must('node', [tsc, '-p', 'tsconfig.json']);

    const scenarios = ['protocol', 'fdpass', 'daemon', 'broker'];
    for (const scenario of scenarios) {
      const run = project.must('node', [join('dist', `${scenario}.js`)], 120_000);
      expect(run.output, scenario).toContain(`${scenario}: ok`);
    }
  });
});
