// The handoff-broker CLI as a real process, against a real admin server
// and a real daemon running in this test process.
import { execFile } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { currentDaemonProcess, type DaemonServer, serveDaemon } from '@handoff/backend-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderServiceUnit } from '../src/systemd/units.js';
import { fakeBroker, startAdminServer, tempDir } from './admin-harness.js';
import { runBrokerCli } from './cli-process.js';

const NOBODY = 65534;

const cli = runBrokerCli;

/**
 * A socket file nobody accepts on — what a broker killed with SIGKILL
 * leaves. (Closing a server in this process would unlink the file.)
 */
async function staleSocket(path: string): Promise<void> {
  const script = `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`;
  await new Promise<void>((resolve) => execFile(process.execPath, ['-e', script], () => resolve()));
  expect(statSync(path).isSocket()).toBe(true);
}

const tmp = tempDir('cli');
const brokerDir = tmp.path('run');
mkdirSync(brokerDir, { mode: 0o700 });
const socket = join(brokerDir, 'broker.sock');
const broker = fakeBroker(socket);
let closeAdmin: () => Promise<void>;
let daemon: DaemonServer;
const daemonEndpoint = join(brokerDir, 'demo-kv.sock');

beforeAll(async () => {
  closeAdmin = (await startAdminServer(socket, broker)).close;
  const identity = await currentDaemonProcess(daemonEndpoint, { entryScript: null });
  daemon = await serveDaemon({
    endpoint: daemonEndpoint,
    identity,
    payloadProtocols: [0xf001],
    onRequest: () => undefined,
  });
});
afterAll(async () => {
  await closeAdmin();
  await daemon.close();
  tmp.remove();
});

describe('admin commands', () => {
  it('status as text and as JSON; --socket and $HANDOFF_BROKER_SOCKET both work', async () => {
    const text = await cli(['status', '--socket', socket]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/^broker: +pid 1234, version 0\.1\.0\n/);
    expect(text.stdout).toContain('uptime:       1h 2m 5s\n');
    const json = await cli(['status', '--json'], { HANDOFF_BROKER_SOCKET: socket });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ schema_version: 1, pid: 1234 });
  });

  it('list, whole and per service', async () => {
    const all = await cli(['list', '--socket', socket]);
    expect(all.code).toBe(0);
    expect(all.stdout.split('\n')[0]).toMatch(
      /^SERVICE +VERSION +PID +STATE +ROUTED +STARTED +ENDPOINT$/,
    );
    expect(all.stdout).toMatch(/\ndemo-kv +1\.2\.0 +4242 +ready/);
    const one = await cli(['list', 'search', '--json', '--socket', socket]);
    expect(JSON.parse(one.stdout).instances.map((i: { service: string }) => i.service)).toEqual([
      'search',
    ]);
  });

  it('metrics prints the OpenMetrics text as is', async () => {
    const run = await cli(['metrics', '--socket', socket]);
    expect(run).toEqual({
      code: 0,
      stdout: '# TYPE connections_open gauge\nconnections_open 3\n# EOF\n',
      stderr: '',
    });
  });

  it('healthz exits 0 when healthy and 1 when not', async () => {
    expect((await cli(['healthz', '--socket', socket])).code).toBe(0);
    broker.healthy = false;
    try {
      const text = await cli(['healthz', '--socket', socket]);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(/^unhealthy\n.*\nFAIL +fd headroom +97% of the fd limit\n$/);
      const json = await cli(['healthz', '--json', '--socket', socket]);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject({ schema_version: 1, healthy: false });
    } finally {
      broker.healthy = true;
    }
  });

  it('shutdown passes --deadline, as text and JSON', async () => {
    const text = await cli(['shutdown', '--deadline', '750', '--socket', socket]);
    expect(text).toMatchObject({ code: 0, stdout: 'shutting down: draining for up to 750 ms\n' });
    const json = await cli(['shutdown', '--json', '--socket', socket]);
    expect(JSON.parse(json.stdout)).toEqual({
      schema_version: 1,
      ok: true,
      shutting_down: true,
      drain_deadline_ms: 5000,
    });
    expect(broker.shutdowns.slice(-2)).toEqual([750, 5000]);
  });

  it('an unreachable broker: exit 1, one friendly line, no stack', async () => {
    const dead = tmp.path('dead.sock');
    await staleSocket(dead);
    const run = await cli(['status', '--socket', dead]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `handoff-broker: cannot reach the broker at ${dead} (ECONNREFUSED) — is \`handoff-broker serve\` running?\n`,
    );
  });
});

describe('usage', () => {
  it('no arguments: usage on stderr, exit 2; --help: usage on stdout, exit 0', async () => {
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^Usage: handoff-broker <command>/);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const command of [
      'serve',
      'status',
      'list',
      'probe',
      'healthz',
      'metrics',
      'doctor',
      'shutdown',
      'install',
    ])
      expect(help.stdout).toMatch(new RegExp(`\\n  ${command} +\\S`));
  });

  it("--version: package.json's version on stdout, exit 0", async () => {
    const { version } = JSON.parse(
      readFileSync(join(import.meta.dirname, '../package.json'), 'utf8'),
    ) as { version: string };
    expect(await cli(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('every command has --help', async () => {
    for (const command of [
      'serve',
      'status',
      'list',
      'probe',
      'healthz',
      'metrics',
      'doctor',
      'shutdown',
      'install',
    ]) {
      const run = await cli([command, '--help']);
      expect(run.code, command).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: handoff-broker ${command}`));
    }
  });

  it('unknown command, unknown flag, bad value, extra argument: exit 2 with usage', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /^handoff-broker: unknown command "frobnicate"\n\nUsage:/],
      [
        ['status', '--frob'],
        /^handoff-broker status: unknown option --frob\n\nUsage: handoff-broker status/,
      ],
      [['shutdown', '--deadline', 'soon'], /--deadline takes a non-negative integer, not "soon"/],
      [['metrics', 'extra'], /unexpected argument "extra"/],
      [['probe'], /missing argument/],
      [['probe', 'Not_A_Service'], /neither a service name nor a path/],
    ];
    for (const [args, stderr] of cases) {
      const run = await cli([...args, '--socket', socket]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(stderr);
    }
  });
});

describe('probe', () => {
  it('PASS: an endpoint path, with identity, every check and the round trip', async () => {
    const run = await cli(['probe', daemonEndpoint]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`probe ${daemonEndpoint}\n`);
    expect(run.stdout).toMatch(new RegExp(`\\n  pid +${process.pid}\\n`));
    for (const check of [
      'connect',
      'answer',
      'nonce',
      'identity',
      'endpoint',
      'expected',
      'peer',
      'start time',
    ])
      expect(run.stdout).toMatch(new RegExp(`\\n  PASS  ${check} `));
    expect(run.stdout).toMatch(/\n {2}round trip \d+\.\d\d ms\n$/);
  });

  it('PASS by service name: the endpoint and pid come from the broker', async () => {
    const saved = broker.instanceList;
    broker.instanceList = [
      { ...saved[0]!, service: 'demo-kv', endpoint: daemonEndpoint, pid: process.pid },
    ];
    try {
      const run = await cli(['probe', 'demo-kv', '--json', '--socket', socket]);
      expect(run.code).toBe(0);
      const body = JSON.parse(run.stdout);
      expect(body).toMatchObject({ schema_version: 1, target: 'demo-kv', ok: true });
      expect(body.probes[0]).toMatchObject({
        endpoint: daemonEndpoint,
        ok: true,
        identity: { pid: process.pid, exe_hash_algorithm: 'blake3' },
        error: null,
      });
      expect(body.probes[0].round_trip_ms).toBeGreaterThan(0);
      const missing = await cli(['probe', 'search-two', '--socket', socket]);
      expect(missing).toMatchObject({
        code: 1,
        stderr: 'handoff-broker: the broker has no running instance of search-two\n',
      });
    } finally {
      broker.instanceList = saved;
    }
  });

  it('FAIL: the expected uid is not the daemon’s — exit 1, checks after it not made', async () => {
    const run = await cli(['probe', daemonEndpoint, '--uid', '4321']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/\n {2}PASS {2}expected +/);
    expect(run.stdout).toMatch(
      /\n {2}FAIL {2}peer +the answering socket belongs to uid 0, expected uid 4321\n/,
    );
    expect(run.stdout).toMatch(/\n {2}SKIP {2}start time +not checked\n/);
    const json = await cli(['probe', daemonEndpoint, '--uid', '4321', '--json']);
    expect(JSON.parse(json.stdout).probes[0].error).toMatchObject({
      code: 'PEER_CREDENTIALS',
      field: 'uid',
    });
  });

  it('FAIL: nothing at the endpoint fails the connect check', async () => {
    const run = await cli(['probe', tmp.path('nothing.sock')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/\n {2}FAIL {2}connect +cannot connect to .*ENOENT/);
  });
});

describe('doctor', () => {
  const configDir = tmp.path('services');
  // The user's systemd units are looked up here, not in this machine's home.
  const xdgConfig = tmp.path('xdg-config');
  const unitDir = join(xdgConfig, 'systemd', 'user');
  beforeAll(() => mkdirSync(configDir));

  const doctor = (socketPath: string, ...extra: string[]) =>
    cli(['doctor', '--socket', socketPath, '--config-dir', configDir, ...extra], {
      XDG_CONFIG_HOME: xdgConfig,
    });

  it('FAIL for a group/world-writable directory, a foreign owner, no socket, bad definitions', async () => {
    const dir = tmp.path('unsafe');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    chownSync(dir, NOBODY, NOBODY);
    writeFileSync(join(configDir, 'broken.json'), '{ not json');
    try {
      const run = await doctor(join(dir, 'broker.sock'));
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/^PASS +socket directory +/m);
      expect(run.stdout).toMatch(/^FAIL +directory owner +owned by uid 65534, not by us/m);
      expect(run.stdout).toMatch(/^FAIL +directory mode +mode 777: writable by group or others/m);
      expect(run.stdout).toMatch(/^FAIL +broker socket +no socket at /m);
      expect(run.stdout).toMatch(/^FAIL +broker health +cannot reach the broker/m);
      expect(run.stdout).toMatch(/^FAIL +service definitions +.*broken\.json/m);
    } finally {
      rmSync(join(configDir, 'broken.json'));
    }
  });

  it('WARN for a directory others can list and no services; PASS for a live, healthy broker', async () => {
    const dir = tmp.path('listable');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const path = join(dir, 'broker.sock');
    const server = await startAdminServer(path, fakeBroker(path));
    chmodSync(path, 0o600);
    try {
      const run = await doctor(path);
      expect(run.stdout).toMatch(/^WARN +directory mode +mode 755: others can list it/m);
      expect(run.stdout).toMatch(/^PASS +broker socket +.* accepts connections/m);
      expect(run.stdout).toMatch(/^PASS +broker health +HEALTHZ: healthy/m);
      expect(run.stdout).toMatch(/^WARN +service definitions +no services defined/m);
      expect(run.stdout).not.toMatch(/^FAIL/m);
      expect(run.code).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('checks the systemd unit install wrote: none, current, without the node flag, node or CLI gone', async () => {
    const path = tmp.path('units-stale.sock');
    await staleSocket(path);
    const unitLines = async () => {
      const run = await doctor(path, '--json');
      const body = JSON.parse(run.stdout) as {
        checks: { name: string; verdict: string; detail: string }[];
      };
      return body.checks.filter((c) => c.name === 'systemd unit');
    };
    // No unit: no line (not everyone runs the broker under systemd).
    expect(await unitLines()).toEqual([]);
    const cliEntry = tmp.path('installed-main.js');
    writeFileSync(cliEntry, '');
    const unitFile = join(unitDir, 'handoff-broker.service');
    const install = (options: { nodePath?: string; cliEntry?: string } = {}) => {
      mkdirSync(unitDir, { recursive: true });
      const text = renderServiceUnit({
        nodePath: process.execPath,
        cliEntry,
        drainMs: 5000,
        exitGraceMs: 10_000,
        ...options,
      }).text;
      writeFileSync(unitFile, text);
      return text;
    };
    try {
      const current = install();
      expect(await unitLines()).toEqual([
        {
          name: 'systemd unit',
          verdict: 'PASS',
          detail: `${unitFile} runs ${process.execPath} --max-semi-space-size=4 ${cliEntry}`,
        },
      ]);
      // What an earlier install wrote: no node flags.
      writeFileSync(unitFile, current.replace(' --max-semi-space-size=4', ''));
      expect(await unitLines()).toEqual([
        {
          name: 'systemd unit',
          verdict: 'WARN',
          detail: expect.stringMatching(
            /starts node without --max-semi-space-size=4 \(written by an earlier install\); rerun `handoff-broker install --systemd --force`$/,
          ),
        },
      ]);
      install({ nodePath: tmp.path('moved/node') });
      expect(await unitLines()).toEqual([
        {
          name: 'systemd unit',
          verdict: 'FAIL',
          detail: expect.stringMatching(
            /runs .*moved\/node, which is not an executable file; rerun/,
          ),
        },
      ]);
      install({ cliEntry: tmp.path('gone/main.js') });
      const text = await doctor(path);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(
        /^FAIL +systemd unit +.* runs the CLI at .*gone\/main\.js, which is gone; rerun/m,
      );
    } finally {
      rmSync(unitDir, { recursive: true, force: true });
    }
  });

  it('a stale socket file FAILs with ECONNREFUSED; --json lists every check', async () => {
    const path = tmp.path('run-stale.sock');
    await staleSocket(path);
    const run = await doctor(path, '--json');
    expect(run.code).toBe(1);
    const body = JSON.parse(run.stdout);
    expect(body).toMatchObject({ schema_version: 1, ok: false });
    expect(body.checks).toContainEqual({
      name: 'broker socket',
      verdict: 'FAIL',
      detail: expect.stringMatching(/is stale: nothing accepts on it \(ECONNREFUSED\)/),
    });
  });
});
