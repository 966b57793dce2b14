// demo-kv's command line without a broker: help, usage errors (exit 2) and
// an unreachable broker (exit 1). Talking to a real broker is in
// demo-daemon.int.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { tempDir } from '../harness.js';

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (data) => {
      stdout += typeof data === 'string' ? data : Buffer.from(data).toString();
    },
    stderr: (text) => {
      stderr += text;
    },
    env,
  });
  return { code, stdout, stderr };
}

const nowhere = tempDir('demo-cli');
afterAll(() => nowhere.remove());

describe('demo-kv', () => {
  it('prints its usage with --help (exit 0), and on stderr without a command (exit 2)', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: demo-kv <command>');
    for (const name of ['get KEY', 'set KEY VALUE', 'del KEY', 'stats']) {
      expect(help.stdout).toContain(name);
    }
    expect(help.stdout).toContain('Exit codes: 0 ok; 1 the key is not there');
    const bare = await run([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: demo-kv <command>');
  });

  it('prints a command’s own help', async () => {
    const help = await run(['get', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: demo-kv get KEY [--wait …]');
    expect(help.stdout).toContain('--wait MS');
    expect(help.stdout).toContain('--socket PATH');
  });

  it.each([
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['--verbose'], 'unknown option --verbose'],
    [['get'], 'missing KEY'],
    [['set', 'k'], 'missing VALUE'],
    [['get', 'a', 'b'], 'unexpected argument "b"'],
    [['stats', 'now'], 'unexpected argument "now"'],
    [['get', 'k', '--bogus'], 'unknown option --bogus'],
    [['set', 'k', 'v', '--ttl', 'soon'], '--ttl takes an integer from 0 to 4294967295, not "soon"'],
    [['set', 'k', 'v', '--ttl', '4294967296'], '--ttl takes an integer'],
    [['get', 'k', '--timeout', '1.5'], '--timeout takes an integer'],
  ])('refuses %j with a usage error (exit 2)', async (argv, message) => {
    const result = await run(argv);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('Usage: demo-kv');
  });

  it('explains an unreachable broker in one line (exit 1)', async () => {
    const socket = nowhere.path('broker.sock');
    // connectService retries a missing broker until the timeout (it may be starting).
    const text = await run(['get', 'k', '--socket', socket, '--timeout', '500']);
    expect(text.code).toBe(1);
    expect(text.stdout).toBe('');
    expect(text.stderr).toBe(
      `demo-kv: cannot reach the broker at ${socket} (cannot connect to ${socket}: ENOENT) — is \`handoff-broker serve\` running?\n`,
    );
    const json = await run(['stats', '--json', '--timeout', '500'], {
      HANDOFF_BROKER_SOCKET: socket,
    });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      schema_version: 1,
      command: 'stats',
      route: null,
      ok: false,
      error: { code: 'CONNECT' },
    });
  });
});
