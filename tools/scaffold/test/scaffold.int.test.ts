// The scaffold for real, in a throwaway repository (symlinks to the real
// packages/ and node_modules/, a copy of the template; never the real
// apps/): `new-daemon` as a process generates a daemon with the longest
// name allowed, whose own tests then pass, which typechecks and builds,
// to which a real broker routes framed requests under its new protocol id
// — through startBroker and through the printed next steps, its built
// client included, after which the repository is still lint-clean — and
// after which a second run, or a taken id, is refused without touching
// anything.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { connectService, startBroker } from '@handoff/broker';
import { MAX_NAME_LENGTH, nameForms } from '@handoff/create-daemon/rename';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { clientArgv, nextSteps, serviceDefinitionArgv } from '../src/next-steps.js';
import { childPids, makeRepository, realRoot, snapshot, tempDir } from './harness.js';

const NAME = 'scaffolded-sensor-hub-24';
const forms = nameForms(NAME);
const app = {
  name: NAME,
  forms,
  relativeDir: `apps/${NAME}`,
  packageName: `@handoff/${NAME}`,
  executables: { client: NAME, daemon: `${NAME}-daemon` },
};
const tmp = tempDir('scaffold-int');
const root = tmp.path('repo');
const appDir = join(root, 'apps', NAME);
const main = join(realRoot, 'tools', 'scaffold', 'src', 'main.ts');
const tsx = ['--conditions=@handoff/source', '--import', 'tsx'];
const bin = (tool: string) => join(root, 'node_modules', '.bin', tool);
const biomeBin = bin('biome');
let baseline: number[];

/** The new app's framed codec (src/kv-protocol.ts), loaded from its directory. */
interface Codec {
  readonly KV_PAYLOAD_PROTOCOL: { readonly name: string; readonly id: number };
  encodeRequest(command: Record<string, unknown>): Uint8Array;
  decodeResponse(payload: Uint8Array): { result: string; value?: Uint8Array };
}

/** Our environment minus vitest's own markers (a nested vitest starts clean), without colours. */
const env = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !key.startsWith('VITEST') && key !== 'FORCE_COLOR',
    ),
  ),
  NO_COLOR: '1',
};

async function exec(
  file: string,
  args: readonly string[],
  cwd = root,
  extraEnv: Record<string, string> = {},
) {
  const child = spawn(file, args, {
    cwd,
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'close');
  return { code: code as number | null, stdout, stderr };
}

/** `npm run new-daemon -- …`, as npm runs it: from tools/scaffold. */
const newDaemon = (...args: string[]) =>
  exec(
    process.execPath,
    [...tsx, main, ...args, '--root', root],
    join(realRoot, 'tools', 'scaffold'),
  );

/** An argv from next-steps.ts, run from the repository root as printed. */
const runStep = (argv: readonly string[], ...extra: string[]) => {
  expect(argv[0]).toBe('node');
  return exec(process.execPath, [...argv.slice(1), ...extra]);
};

beforeAll(() => {
  baseline = childPids();
  makeRepository(root, { linked: true });
});

afterAll(async () => {
  await vi.waitFor(() => expect(childPids()).toEqual(baseline), { timeout: 15_000 });
  tmp.remove();
});

describe('npm run new-daemon', { timeout: 120_000 }, () => {
  it(`generates apps/${NAME}, the longest name allowed`, async () => {
    expect(NAME).toHaveLength(MAX_NAME_LENGTH);
    const result = await newDaemon(NAME, '--no-install', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      dry_run: false,
      dir: `apps/${NAME}`,
      package: `@handoff/${NAME}`,
      service: NAME,
      payload_protocol: '0xF001',
      payload_protocol_picked: true,
      executables: { client: NAME, daemon: `${NAME}-daemon` },
      installed: false,
    });
    // Placed whole: no staging directory left beside it.
    expect(readdirSync(join(root, 'apps'))).toEqual(['demo-daemon', NAME]);
    // Regenerated from the renamed proto, under its own pbjs root.
    const generated = readFileSync(
      join(appDir, 'src', 'generated', `${forms.snake}_v1.js`),
      'utf8',
    );
    expect(generated).toContain(`$protobuf.roots["handoff_${forms.snake}_v1"]`);
    // Formatted and lint-clean as the repository's Biome wants it.
    const biome = await exec(bin('biome'), ['check', '--vcs-enabled=false', `apps/${NAME}`]);
    expect(biome.stdout + biome.stderr).toMatch(/Checked \d+ files/);
    expect(biome.code).toBe(0);
  });

  // The template's whole suite, its data-path campaign included (slow
  // readers measured by RSS, ~1 min on a loaded 2-core machine).
  it('passes its own tests, unit and integration', { timeout: 360_000 }, async () => {
    const result = await exec(bin('vitest'), ['run', '--reporter=dot'], appDir);
    // A failure's details go to stderr under the dot reporter: show them.
    const report = `${result.stdout.slice(-2000)}\n--- stderr ---\n${result.stderr.slice(-6000)}`;
    expect(result.code, report).toBe(0);
    expect(result.stdout).toMatch(/Test Files\s+\d+ passed \(\d+\)/);
    expect(result.stdout).toMatch(/Tests\s+\d+ passed \(\d+\)/);
  });

  it('typechecks and builds, and the built daemon runs', async () => {
    for (const config of ['tsconfig.json', 'tsconfig.build.json']) {
      const tsc = await exec(bin('tsc'), ['-p', join(appDir, config)]);
      expect(tsc.stdout + tsc.stderr).toBe('');
      expect(tsc.code).toBe(0);
    }
    expect((await exec(process.execPath, ['scripts/copy-generated.mjs'], appDir)).code).toBe(0);
    expect(existsSync(join(appDir, 'dist', 'generated', `${forms.snake}_v1.js`))).toBe(true);
    // The app's own compiled entry; the workspace packages it imports come
    // from source, since `npm test` runs on a fresh clone before any build.
    const help = await exec(
      process.execPath,
      ['--conditions=@handoff/source', '--import', 'tsx', 'dist/daemon-main.js', '--help'],
      appDir,
    );
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(new RegExp(`^Usage: ${NAME}-daemon \\[--endpoint PATH\\]`));
    expect(help.stdout).toContain('payload protocol\n0xF001)');
  });

  it('is routed to by a real broker, framed requests under its own protocol id', async () => {
    const printed = await runStep(serviceDefinitionArgv(app, 0));
    expect(printed).toMatchObject({ code: 0, stderr: '' });
    const definition = JSON.parse(printed.stdout);
    expect(definition).toMatchObject({ name: NAME, version: '1.0.0', cwd: appDir });
    const broker = await startBroker({
      socketPath: tmp.path('b1', 'broker.sock'),
      services: [definition],
      watchConfig: false,
      logger: pino({ level: 'silent' }),
    });
    const clients: FrameClient[] = [];
    try {
      const codec = (await import(join(appDir, 'src', 'kv-protocol.ts'))) as Codec;
      expect(codec.KV_PAYLOAD_PROTOCOL).toEqual({ name: NAME, id: 0xf001 });
      const connect = async () => {
        const { socket, route } = await connectService(NAME, {
          version: '1.0.0',
          brokerPath: broker.socketPath,
          timeoutMs: 60_000,
        });
        expect(route).toBe('handoff');
        const client = new FrameClient(socket);
        clients.push(client);
        return client;
      };
      const ask = async (client: FrameClient, command: Record<string, unknown>) =>
        codec.decodeResponse((await client.request(0xf001, codec.encodeRequest(command))).payload);

      const client = await connect();
      const key = new TextEncoder().encode('greeting');
      const value = new TextEncoder().encode('hello');
      expect(await ask(client, { op: 'set', key, value, ttlMs: 0 })).toEqual({ result: 'stored' });
      const found = await ask(client, { op: 'get', key, waitMs: 0 });
      expect(found.result).toBe('found');
      expect(new TextDecoder().decode(found.value)).toBe('hello');
      // The template's id is not served: the daemon drops that connection.
      const stranger = await connect();
      await expect(stranger.request(0xf0d0, new Uint8Array(0))).rejects.toMatchObject({
        code: 'CLOSED',
      });
      expect(broker.registry.list().map((b) => b.definition.name)).toEqual([NAME]);
    } finally {
      for (const client of clients) client.close();
      await broker.close({ deadlineMs: 5000 });
    }
  });

  it('works as the printed next steps say, and leaves the repository lint-clean', async () => {
    const steps = nextSteps(app, true).filter((s) => s.argv !== undefined);
    const argvs = steps.map((s) => s.argv!.join(' '));
    const at = (prefix: string) => {
      const index = argvs.findIndex((a) => a.startsWith(prefix));
      expect(index, prefix).toBeGreaterThanOrEqual(0);
      return steps[index]!;
    };
    // The definition goes where the steps say: tmp/, made first.
    const mkdir = at('mkdir');
    expect(mkdir.argv).toEqual(['mkdir', '-p', 'tmp']);
    expect((await exec(mkdir.argv![0]!, mkdir.argv!.slice(1))).code).toBe(0);
    const definitionStep = steps[steps.indexOf(mkdir) + 1]!;
    expect(definitionStep.argv).toEqual(serviceDefinitionArgv(app));
    const printed = await runStep(definitionStep.argv!);
    expect(printed).toMatchObject({ code: 0, stderr: '' });
    const config = join(root, definitionStep.stdoutTo!);
    writeFileSync(config, printed.stdout);

    const socket = tmp.path('b2', 'broker.sock');
    const serve = at('node --conditions=@handoff/source --import tsx packages/broker');
    expect(serve.background).toBe(true);
    const [node, ...serveArgs] = serve.argv!;
    expect(node).toBe('node');
    const broker: ChildProcess = spawn(process.execPath, [...serveArgs, '--socket', socket], {
      cwd: root,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    broker.stderr?.on('data', (d) => (log += d));
    const exited = once(broker, 'exit');
    try {
      await vi.waitFor(() => expect(existsSync(socket), log).toBe(true), { timeout: 30_000 });
      const set = await runStep(clientArgv(app, 'set', 'greeting', 'hello'), '--socket', socket);
      expect(set).toMatchObject({ code: 0, stdout: 'stored greeting\n' });
      expect(set.stderr).toContain(`${NAME}: connected by handoff`);

      // The built client. The printed `npm run build` builds every project;
      // here packages/ is the real repository's, so only the app's part of
      // it runs, and the packages it imports come from source, as in the
      // rest of `npm test` (which runs before any build).
      expect(at('npm run build').argv).toEqual(['npm', 'run', 'build']);
      const build = await exec('npm', ['run', 'build', '-w', app.packageName]);
      expect(build.code, build.stdout + build.stderr).toBe(0);
      // What npm install links for a workspace: its package, and its bins, executable.
      const bin = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')).bin[NAME];
      symlinkSync(join('..', '..', 'apps', NAME), join(root, 'node_modules', '@handoff', NAME));
      symlinkSync(join('..', '@handoff', NAME, bin), join(root, 'node_modules', '.bin', NAME));
      chmodSync(join(appDir, bin), 0o755);
      const getArgv = at('npx --no').argv!;
      expect(getArgv).toEqual(['npx', '--no', NAME, 'get', 'greeting']);
      const get = await exec(getArgv[0]!, [...getArgv.slice(1), '--socket', socket], root, {
        NODE_OPTIONS: '--conditions=@handoff/source --import tsx',
      });
      expect(get, get.stderr).toMatchObject({ code: 0, stdout: 'hello\n' });
    } finally {
      broker.kill('SIGTERM');
      await exited;
    }

    // Nothing the steps wrote is tracked or linted: Biome, as `npm run lint`
    // runs it (through git's ignore file), is content with the repository —
    // all of it but the links to the real packages/ and node_modules/, which
    // are not this test's (and Biome cannot walk a linked directory there).
    expect((await exec('git', ['init', '-q'])).code).toBe(0);
    expect((await exec('git', ['check-ignore', '-q', definitionStep.stdoutTo!])).code).toBe(0);
    const ours = readdirSync(root).filter((e) => !['packages', 'node_modules', '.git'].includes(e));
    expect(ours).toContain('tmp');
    const lint = await exec(biomeBin, ['check', ...ours]);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
  });

  it('refuses a second run with the same name, and a taken id, touching nothing', async () => {
    const before = snapshot(join(root, 'apps'));
    const again = await newDaemon(NAME, '--no-install');
    expect(again).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `new-daemon: apps/${NAME} already exists; nothing was changed\n`,
    });
    const template = await newDaemon('other', '--protocol-id', '0xF0D0', '--no-install');
    expect(template.code).toBe(1);
    expect(template.stderr).toMatch(
      /^new-daemon: protocol id 0xF0D0 is already used by apps\/demo-daemon /,
    );
    const ours = await newDaemon('other', '--protocol-id', '0xf001', '--no-install');
    expect(ours.code).toBe(1);
    expect(ours.stderr).toContain(
      `protocol id 0xF001 is already used by apps/${NAME} (package.json`,
    );
    const next = await newDaemon('other', '--dry-run', '--json');
    expect(JSON.parse(next.stdout)).toMatchObject({ payload_protocol: '0xF002' });
    expect(snapshot(join(root, 'apps'))).toEqual(before);
  });
});
