// The broker refuses to run as root, for real: this machine and CI run the
// tests as root (the test run as a whole opts in with HANDOFF_ALLOW_ROOT=1,
// set by tools/testkit isolated-state.ts; these tests take it away).
import { existsSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from '../src/broker-launch.js';
import { RootRefusalError } from '../src/root-refusal.js';
import { runBrokerCli } from './cli-process.js';
import { echoService, openFds, tempDir } from './harness.js';
import { type ServeChild, spawnServe, untilServing } from './serve-child.js';

const isRoot = process.geteuid?.() === 0;
const dirs: ReturnType<typeof tempDir>[] = [];
const serves: ServeChild[] = [];
afterEach(async () => {
  for (const serve of serves.splice(0)) await serve.stop();
  for (const dir of dirs.splice(0)) dir.remove();
});
const fresh = () => {
  const dir = tempDir('root');
  dirs.push(dir);
  writeFileSync(dir.path('services.json'), JSON.stringify({ services: [echoService('echo')] }));
  return dir;
};
/** serve's flags for a broker in `dir`, with a real configuration (the root check comes first). */
const serveArgs = (dir: ReturnType<typeof tempDir>) => [
  '--socket',
  dir.path('run', 'broker.sock'),
  '--state-dir',
  dir.path('state'),
  '--config-file',
  dir.path('services.json'),
];

describe.runIf(isRoot)('as root', () => {
  it('serve without --allow-root exits 1, says why, and binds nothing', async () => {
    const dir = fresh();
    const socket = dir.path('run', 'broker.sock');
    const run = await runBrokerCli(['serve', ...serveArgs(dir)], { HANDOFF_ALLOW_ROOT: '' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `cannot start the broker at ${socket}: refusing to run as root: ` +
        'a root broker spawns its daemons as root and hands them to every peer its policy admits.',
    );
    expect(run.stderr).toContain('--allow-root');
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(dir.path('run', 'control.sock'))).toBe(false);
  });

  it('serve --allow-root runs, and says it runs as root', async () => {
    const dir = fresh();
    const socket = dir.path('run', 'broker.sock');
    const serve = spawnServe(['--allow-root', ...serveArgs(dir)], {
      HANDOFF_ALLOW_ROOT: '',
    });
    serves.push(serve);
    await untilServing(serve, socket);
    expect(serve.output()).toContain(
      'handoff-broker serve: running as root (--allow-root): the daemons it spawns run as root too',
    );
    await serve.stop();
    expect(await serve.exited).toEqual([0, null]);
  });

  it('HANDOFF_ALLOW_ROOT=1 opts serve in without the flag', async () => {
    const dir = fresh();
    const socket = dir.path('run', 'broker.sock');
    const serve = spawnServe(serveArgs(dir), {
      HANDOFF_ALLOW_ROOT: '1',
    });
    serves.push(serve);
    await untilServing(serve, socket);
    expect(existsSync(socket)).toBe(true);
  });

  it('startBroker({ allowRoot: false }) rejects with RootRefusalError before opening anything', async () => {
    const dir = fresh();
    const before = openFds();
    const error = await startBroker({
      socketPath: dir.path('run', 'broker.sock'),
      allowRoot: false,
      watchConfig: false,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RootRefusalError);
    expect((error as RootRefusalError).code).toBe('RUNNING_AS_ROOT');
    expect(existsSync(dir.path('run'))).toBe(false);
    expect(openFds()).toBe(before);
  });
});

describe.skipIf(isRoot)('not as root', () => {
  it('serve needs no opt-in', async () => {
    const dir = fresh();
    const socket = dir.path('run', 'broker.sock');
    const serve = spawnServe(serveArgs(dir), {
      HANDOFF_ALLOW_ROOT: '',
    });
    serves.push(serve);
    await untilServing(serve, socket);
    expect(serve.output()).not.toContain('as root');
  });
});
