// The command line without generating for real (that is
// scaffold.int.test.ts): help, usage errors (exit 2), refusals (exit 1),
// dry runs, and --json, against a copy of the template.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ROOT, EXIT_FAILED, EXIT_OK, EXIT_USAGE, runScaffold, USAGE } from '../src/cli.js';
import { captureIo, makeRepository, realRoot, tempDir } from './harness.js';

const tmp = tempDir('scaffold-cli');
const root = tmp.path('repo');
beforeAll(() => makeRepository(root));
afterAll(() => tmp.remove());

async function run(...argv: string[]) {
  const io = captureIo();
  const code = await runScaffold(argv, io);
  return { code, stdout: io.out, stderr: io.err };
}

describe('new-daemon', () => {
  it('finds the repository it lives in', () => {
    expect(DEFAULT_ROOT).toBe(realRoot);
  });

  it('prints its usage with --help', async () => {
    expect(await run('--help')).toEqual({ code: EXIT_OK, stdout: USAGE, stderr: '' });
    expect(USAGE).toMatch(/^Usage: npm run new-daemon -- <name> \[--protocol-id ID\]/);
    expect(USAGE).toContain(
      'Exit codes: 0 created; 1 refused (name or id taken) or failed; 2 usage error.',
    );
  });

  it.each([
    [[], 'new-daemon: a name is required'],
    [['a', 'b'], 'new-daemon: one name only, not "a" "b"'],
    [['a', '--bogus'], "new-daemon: Unknown option '--bogus'"],
    [['a', '--protocol-id'], "new-daemon: Option '--protocol-id <value>' argument missing"],
    [
      ['a', '--protocol-id', 'F0A1'],
      'new-daemon: protocol id "F0A1" is neither hex (0xF0A1) nor decimal (61601)',
    ],
    [['a', '--root', ''], 'new-daemon: --root needs a directory'],
  ])('exits 2 with the usage for %j', async (argv, message) => {
    const result = await run(...argv);
    expect(result.code).toBe(EXIT_USAGE);
    expect(result.stderr.startsWith(message)).toBe(true);
    expect(result.stderr.endsWith(USAGE)).toBe(true);
    expect(result.stdout).toBe('');
  });

  it.each([
    [['Sensor'], EXIT_USAGE, /^new-daemon: "Sensor" must start with a lowercase letter/],
    [
      ['x', '--protocol-id', '0x7A63'],
      EXIT_USAGE,
      /^new-daemon: protocol id 0x7A63 is not in the private-use range/,
    ],
    [
      ['demo-daemon'],
      EXIT_FAILED,
      /^new-daemon: apps\/demo-daemon already exists; nothing was changed\n$/,
    ],
    [
      ['x', '--protocol-id', '61648'],
      EXIT_FAILED,
      /^new-daemon: protocol id 0xF0D0 is already used by apps\/demo-daemon \(package\.json, src\/kv-protocol\.ts\)/,
    ],
    [['kv'], EXIT_FAILED, /^new-daemon: the name "kv" would turn DemoKvErrorCode into KvErrorCode/],
  ])(
    'refuses %j with exit %i and a clear message, writing nothing',
    async (argv, code, message) => {
      const result = await run(...argv, '--root', root);
      expect(result).toMatchObject({ code, stdout: '' });
      expect(result.stderr).toMatch(message);
      expect(readdirSync(join(root, 'apps'))).toEqual(['demo-daemon']);
    },
  );

  it('reports a refusal as JSON too with --json', async () => {
    const result = await run('demo-daemon', '--json', '--root', root);
    expect(result.code).toBe(EXIT_FAILED);
    expect(JSON.parse(result.stdout)).toEqual({
      schema_version: 1,
      error: {
        code: 'NAME_TAKEN',
        message: 'apps/demo-daemon already exists; nothing was changed',
      },
    });
  });

  it('lists what it would write on a dry run, and writes nothing', async () => {
    const result = await run('sensor-hub', '--dry-run', '--root', root);
    expect(result.code).toBe(EXIT_OK);
    expect(result.stdout).toContain(
      'Would create apps/sensor-hub from apps/demo-daemon (dry run: nothing written)\n' +
        '  service           sensor-hub (its client: sensor-hub, its daemon: sensor-hub-daemon)\n' +
        '  payload protocol  0xF001 (the lowest free private-use id)\n' +
        '  package           @handoff/sensor-hub\n' +
        '  proto             proto/sensor_hub_v1.proto, package handoff.sensor_hub.v1\n',
    );
    expect(result.stdout).toContain('    test/sensor-hub.int.test.ts\n');
    expect(result.stderr).toBe('');
    expect(readdirSync(join(root, 'apps'))).toEqual(['demo-daemon']);
  });

  it('describes a dry run as one JSON object', async () => {
    const result = await run(
      'sensor-hub',
      '--dry-run',
      '--json',
      '--protocol-id',
      '0xf0a1',
      '--root',
      root,
    );
    expect(result.code).toBe(EXIT_OK);
    const json = JSON.parse(result.stdout);
    expect(json).toMatchObject({
      schema_version: 1,
      dry_run: true,
      name: 'sensor-hub',
      dir: 'apps/sensor-hub',
      package: '@handoff/sensor-hub',
      service: 'sensor-hub',
      payload_protocol: '0xF0A1',
      payload_protocol_picked: false,
      executables: { client: 'sensor-hub', daemon: 'sensor-hub-daemon' },
      proto_package: 'handoff.sensor_hub.v1',
      installed: false,
      next_steps: [],
    });
    expect(json.files).toContain('src/generated/sensor_hub_v1.js');
  });
});
