// Issue 16, "Bad configuration is nearly silent": `serve` refuses to start
// on a missing or broken config (naming file, line and column) unless
// --allow-empty; a reload that fails keeps the last good definitions and
// `status` says so until a good reload; `doctor` reports what the running
// broker loaded, not the default directory. Real `serve` processes, real files.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdminVerb } from '@handoff/protocol';
import { processesMentioning } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { adminRequest } from '../src/client/admin-client.js';
import { runBrokerCli } from './cli-process.js';
import { echoService, openFds, tempDir, tsxArgs } from './harness.js';

const repo = join(import.meta.dirname, '../../..');
const main = join(import.meta.dirname, '../src/cli/main.ts');

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function scratch() {
  const tmp = tempDir('config-loud');
  cleanups.push(() => tmp.remove());
  cleanups.unshift(() => {
    for (const pid of processesMentioning(tmp.dir)) process.kill(pid, 'SIGKILL');
  });
  // An empty XDG_CONFIG_HOME: the default config directory does not exist.
  const env = { XDG_CONFIG_HOME: tmp.path('xdg-config'), HANDOFF_CONFIG_DIR: '' };
  return { tmp, env, socket: tmp.path('run/broker.sock') };
}

interface Serving {
  child: ChildProcess;
  output: () => string;
  stderr: () => string;
  stop(): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: STATUS JSON, read field by field
async function status(socket: string): Promise<Record<string, any>> {
  const reply = await adminRequest(
    socket,
    { verb: AdminVerb.STATUS, json: true },
    { timeoutMs: 5000 },
  );
  return JSON.parse(reply.body);
}

/** A long-running `serve`, once its socket answers STATUS. */
async function serve(args: string[], env: NodeJS.ProcessEnv, socket: string): Promise<Serving> {
  const child = spawn(process.execPath, [...tsxArgs, main, 'serve', '--socket', socket, ...args], {
    cwd: repo,
    env: { ...process.env, HANDOFF_BROKER_SOCKET: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = once(child, 'exit');
  await expect
    .poll(
      async () => {
        if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${err}`);
        return status(socket).then(
          () => true,
          () => false,
        );
      },
      { timeout: 30_000, interval: 100 },
    )
    .toBe(true);
  return {
    child,
    output: () => out + err,
    stderr: () => err,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('serve refuses to start on a bad configuration (issue 16)', () => {
  it('a --config-file that does not exist: exit 1, the file named', async () => {
    const { tmp, env, socket } = scratch();
    const file = tmp.path('nope.json');
    const run = await runBrokerCli(['serve', '--socket', socket, '--config-file', file], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`refusing to start: ${file}: does not exist`);
    expect(run.stderr).toContain('--allow-empty');
    const json = await runBrokerCli(
      ['serve', '--json', '--socket', socket, '--config-file', file],
      env,
    );
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      code: 'CONFIG_MISSING',
      file,
      line: null,
      column: null,
    });
  });

  it('broken JSON: exit 1 with file:line:column, and under --json one document', async () => {
    const { tmp, env, socket } = scratch();
    const file = tmp.path('services.json');
    writeFileSync(file, '{\n  "services": [\n    { "name": "a", }\n  ]\n}\n');
    const run = await runBrokerCli(['serve', '--socket', socket, '--config-file', file], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`refusing to start: ${file}:3:20: is not JSON:`);
    const json = await runBrokerCli(
      ['serve', '--json', '--socket', socket, '--config-file', file],
      env,
    );
    expect(json.code).toBe(1);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ ok: false, code: 'CONFIG_SYNTAX', file, line: 3, column: 20 });
    expect(doc.message).toMatch(/is not JSON/);
  });

  it('a --config-dir that does not exist, or holds an invalid definition: exit 1', async () => {
    const { tmp, env, socket } = scratch();
    const dir = tmp.path('nowhere');
    const missing = await runBrokerCli(
      ['serve', '--json', '--socket', socket, '--config-dir', dir],
      env,
    );
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ code: 'CONFIG_DIR_MISSING', file: dir });
    mkdirSync(dir);
    writeFileSync(join(dir, 'ok.json'), JSON.stringify(echoService('fine')));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...echoService('bad'), args: 'x' }));
    const invalid = await runBrokerCli(['serve', '--socket', socket, '--config-dir', dir], env);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain(`refusing to start: ${join(dir, 'bad.json')}: args:`);
  });

  it('the default directory missing: exit 1, saying it is the default and what to pass', async () => {
    const { env, socket } = scratch();
    const run = await runBrokerCli(['serve', '--socket', socket], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /xdg-config\/handoff\/services: does not exist \(the default directory: create it, or pass --config-dir/,
    );
  });

  it('--allow-empty starts anyway and warns', async () => {
    const { tmp, env, socket } = scratch();
    const dir = tmp.path('nowhere');
    const broker = await serve(['--config-dir', dir, '--allow-empty'], env, socket);
    expect(broker.stderr()).toContain(`warning: ${dir}: does not exist`);
    expect(broker.stderr()).toContain(
      'starting anyway (--allow-empty) with 0 service definition(s)',
    );
    expect((await status(socket)).services).toBe(0);
    await broker.stop();
  });
});

describe('a reload that fails keeps the last good definitions (issue 16)', () => {
  it('keeps them, says so at warn, shows it in status, and a good reload clears it', async () => {
    const { tmp, env, socket } = scratch();
    const dir = tmp.path('services');
    mkdirSync(dir);
    const file = join(dir, 'echo.json');
    writeFileSync(file, JSON.stringify(echoService('echo')));
    const broker = await serve(['--config-dir', dir], env, socket);
    const fdsBefore = openFds();
    expect((await status(socket)).config_reload).toMatchObject({ ok: true, definitions: 1 });

    writeFileSync(file, '{\n  "name": "echo",\n  oops\n}\n');
    await expect
      .poll(async () => (await status(socket)).config_reload?.ok, { timeout: 10_000 })
      .toBe(false);
    const failed = await status(socket);
    expect(failed.services).toBe(1);
    expect(failed.config_reload.failure).toMatchObject({
      code: 'INVALID_JSON',
      file,
      line: 3,
      column: 3,
      kept_definitions: 1,
    });
    const text = await runBrokerCli(['status', '--socket', socket], env);
    expect(text.stdout).toMatch(
      new RegExp(
        `config: +RELOAD FAILED .*${file}:3:3: is not JSON.*; keeping 1 definitions from `,
      ),
    );
    // The broker's log says it too, at warn (pino level 40), with the position.
    await expect
      .poll(() => broker.output(), { timeout: 5000 })
      .toMatch(
        /"level":40[^\n]*"line":3,"column":3[^\n]*config reload failed: .*keeping 1 definitions from /,
      );

    writeFileSync(join(dir, 'second.json'), JSON.stringify(echoService('second')));
    writeFileSync(file, JSON.stringify(echoService('echo')));
    await expect
      .poll(async () => (await status(socket)).config_reload?.ok, { timeout: 10_000 })
      .toBe(true);
    const good = await status(socket);
    expect(good.services).toBe(2);
    expect(good.config_reload.failure).toBeNull();
    expect(openFds()).toEqual(fdsBefore);
    await broker.stop();
  });
});

describe('an upgrade onto a broken configuration (issue 16)', () => {
  it('fails, naming the file and position, and the old broker keeps serving what it had', async () => {
    const { tmp, env, socket } = scratch();
    const dir = tmp.path('services');
    mkdirSync(dir);
    const file = join(dir, 'echo.json');
    writeFileSync(file, JSON.stringify(echoService('echo')));
    const broker = await serve(['--config-dir', dir], env, socket);
    const before = await status(socket);
    writeFileSync(file, '{\n  "name": "echo",\n  oops\n}\n');
    await expect
      .poll(async () => (await status(socket)).config_reload?.ok, { timeout: 10_000 })
      .toBe(false);
    const upgrade = await runBrokerCli(
      ['upgrade', '--json', '--socket', socket, '--ready-timeout', '60000'],
      env,
    );
    expect(upgrade.code, upgrade.stdout + upgrade.stderr).toBe(1);
    const doc = JSON.parse(upgrade.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.message).toContain(`${file}:3:3: is not JSON`);
    const after = await status(socket);
    expect(after.pid).toBe(before.pid);
    expect(after.services).toBe(1);
    expect(broker.child.exitCode).toBeNull();
    await broker.stop();
  });
});

describe('doctor asks the running broker (issue 16)', () => {
  it('reports what a broker with a non-default config dir loaded, and falls back to files without one', async () => {
    const { tmp, env, socket } = scratch();
    const dir = tmp.path('elsewhere');
    mkdirSync(dir);
    writeFileSync(join(dir, 'echo.json'), JSON.stringify(echoService('echo')));
    const broker = await serve(['--config-dir', dir], env, socket);
    const asked = await runBrokerCli(['doctor', '--json', '--socket', socket], env);
    const checks = JSON.parse(asked.stdout).checks as {
      name: string;
      verdict: string;
      detail: string;
    }[];
    const definitions = checks.filter((c) => c.name === 'service definitions');
    expect(definitions).toEqual([
      {
        name: 'service definitions',
        verdict: 'PASS',
        detail: `1 loaded by the running broker (echo@1.0.0) from ${join(dir, 'echo.json')}`,
      },
    ]);
    await broker.stop();
    const alone = await runBrokerCli(['doctor', '--json', '--socket', socket], env);
    const fallback = (JSON.parse(alone.stdout).checks as { name: string; detail: string }[]).filter(
      (c) => c.name === 'service definitions',
    );
    expect(fallback).toHaveLength(1);
    expect(fallback[0]!.detail).toMatch(/no broker answered, so the files were read/);
  });
});
