// `npm create @handoff/daemon` as a user runs it: create-daemon and the
// packages it depends on are published to a local registry the way a
// release publishes them; npm create fetches it from there by name and
// generates projects outside the repository, which install the published
// packages by version (on a PATH with no compiler: the addon comes from its
// prebuild), pass their own tests, and — the minimal one — serve a client
// through `npm start` and `npm run client` exactly as the printed steps say.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerProject, pathWithoutBuildTools } from '../src/consumer.ts';
import { type Registry, repoRoot, startRegistry } from '../src/registry.ts';

const createDaemon = join(repoRoot, 'packages', 'create-daemon');
const version = (dir: string): string =>
  (
    JSON.parse(readFileSync(join(repoRoot, 'packages', dir, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

let registry: Registry;
let noBuildTools: string;
/** Where the user runs npm create: a directory of their own, outside the repository. */
let work: ConsumerProject;
const started: ChildProcess[] = [];

beforeAll(async () => {
  for (const built of ['dist/main.js', 'dist/versions.json', 'dist/templates/kv/src/daemon.ts']) {
    if (!existsSync(join(createDaemon, built))) {
      throw new Error(
        `packages/create-daemon/${built} is missing: run \`npx nx run-many -t build\` first`,
      );
    }
  }
  registry = await startRegistry();
  const published = await registry.publishAll();
  expect(published.output).toContain('@handoff/create-daemon');
  noBuildTools = pathWithoutBuildTools(join(registry.dir, 'bin'));
  const dir = join(registry.dir, 'work');
  mkdirSync(dir, { recursive: true });
  work = new ConsumerProject(dir, registry, noBuildTools);
});

afterAll(async () => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGKILL');
      await once(child, 'exit');
    }
  }
  await registry?.stop();
});

/** `npm create @handoff/daemon@<version> <dir> [-- args]`, as printed in the README. */
function npmCreate(dir: string, ...args: string[]) {
  const run = work.must('npm', [
    'create',
    `@handoff/daemon@${version('create-daemon')}`,
    dir,
    ...(args.length > 0 ? ['--', ...args] : []),
  ]);
  // The steps it prints are the ones this test then runs.
  expect(run.output).toContain(`cd ${dir} && npm install && npm test && npm start`);
  return new ConsumerProject(join(work.dir, dir), registry, noBuildTools);
}

function expectPublishedRanges(project: ConsumerProject) {
  const manifest = JSON.parse(readFileSync(join(project.dir, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const dir of ['backend-sdk', 'broker', 'protocol']) {
    expect(manifest.dependencies[`@handoff/${dir}`]).toBe(`^${version(dir)}`);
  }
}

describe('npm create @handoff/daemon', () => {
  it('makes a minimal project that installs, passes its tests, and serves through npm start', async () => {
    const project = npmCreate('my-daemon');
    expectPublishedRanges(project);
    project.must('npm', ['install']);
    const test = project.must('npm', ['test'], 300_000);
    // vitest colours its summary even on a pipe here.
    expect(stripVTControlCharacters(test.output)).toMatch(/Tests\s+\d+ passed \(\d+\)/);

    // npm start in its own process group: Ctrl-C in a terminal reaches them all.
    const start = spawn('npm', ['start'], {
      cwd: project.dir,
      env: registry.env({ PATH: noBuildTools }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    started.push(start);
    let output = '';
    start.stdout!.on('data', (d) => (output += d));
    start.stderr!.on('data', (d) => (output += d));
    const exited = once(start, 'exit');
    const command = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`npm start printed no command:\n${output}`)),
        60_000,
      );
      start.stdout!.on('data', () => {
        const match = /try, in another terminal: (npm run client -- --socket \S+) there/.exec(
          output,
        );
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    const [npm, ...args] = command.split(' ');
    const client = project.must(npm!, [...args, 'from', 'e2e'], 60_000);
    expect(client.output).toContain('hello, from e2e!');
    expect(client.output).toContain('(connected by handoff)');

    process.kill(-start.pid!, 'SIGINT');
    await exited;
    // The broker stopped the daemon it started.
    const left = work.run('pgrep', ['-f', join(project.dir, 'src', 'daemon-main.ts')]);
    expect(left.output.trim()).toBe('');
    // And npm start removed its private directory, socket and all.
    const socket = args.at(-1)!;
    expect(existsSync(dirname(socket)), socket).toBe(false);
  });

  it('makes a kv project that installs and passes its tests', () => {
    const project = npmCreate('cache-daemon', '--template', 'kv');
    expectPublishedRanges(project);
    project.must('npm', ['install']);
    const test = project.must('npm', ['test'], 600_000);
    // vitest colours its summary even on a pipe here.
    expect(stripVTControlCharacters(test.output)).toMatch(/Tests\s+\d+ passed \(\d+\)/);
    project.must('npm', ['run', 'build']);
    expect(existsSync(join(project.dir, 'dist', 'cli', 'main.js'))).toBe(true);
  });
});
