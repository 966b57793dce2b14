// `handoff-broker top` live, in a real terminal: tmux (on its own socket in
// a temp dir, killed after each test) runs the real CLI at 120×30; the test
// reads the screen with capture-pane and types with send-keys — the view
// shows the services, updates, re-sorts on s / digits, shows a broker it
// cannot reach, and quits on q and Ctrl-C with exit 0, the terminal given
// back (normal screen, cursor shown, echo and icanon on) and no process left.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { processesMentioning } from '@handoff/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectService } from '../src/client/connect-service.js';
import { helloBytes, liveBrokers, rawHello } from './broker-session.js';
import { echoService, tempDir, tsxArgs } from './harness.js';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '../../..');
const main = join(import.meta.dirname, '../src/cli/main.ts');
const { broker, dirs } = liveBrokers();

/** A tmux server of the test's own: `-S` a socket in a temp dir, no user config. */
function tmuxServer() {
  const dir = tempDir('top-tmux');
  dirs.push(dir);
  const socket = dir.path('tmux.sock');
  const mark = dir.path('mark');
  const tmux = async (...args: string[]) =>
    (await run('tmux', ['-S', socket, '-f', '/dev/null', ...args])).stdout;
  return {
    mark,
    tmux,
    /** Starts `top <args>` in session `name`; the pane stays once it exits, to be read. */
    async start(name: string, args: string[]) {
      const cli = [process.execPath, ...tsxArgs, main, 'top', ...args].map(quote).join(' ');
      const command =
        `cd ${quote(repo)} && env HANDOFF_TOP_MARK=${quote(mark)} TERM=xterm-256color ${cli}; rc=$?; ` +
        `stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo; ` +
        // Then wait for a line: the terminal's state is read from a live pane.
        'echo "top-exited rc=$rc"; read line; exit $rc';
      await tmux(
        'new-session',
        '-d',
        '-x',
        '120',
        '-y',
        '30',
        '-s',
        name,
        command,
        ';',
        'set-option',
        '-w',
        '-t',
        name,
        'remain-on-exit',
        'on',
      );
    },
    screen: (name: string) => tmux('capture-pane', '-p', '-t', name),
    pane: async (name: string) => {
      const [dead, cursor, alternate] = (
        await tmux(
          'display-message',
          '-p',
          '-t',
          name,
          '#{pane_dead} #{cursor_flag} #{alternate_on}',
        )
      )
        .trim()
        .split(' ');
      return { dead, cursor, alternate };
    },
    keys: (name: string, ...keys: string[]) => tmux('send-keys', '-t', name, ...keys),
    /** Kills the server, and checks it is gone (its socket answers no more). */
    async kill() {
      await tmux('kill-server').catch(() => '');
      await expect(tmux('has-session')).rejects.toThrow();
    },
  };
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The screen line of a service's row. */
function row(screen: string, service: string): number {
  return screen.split('\n').findIndex((l) => l.startsWith(`${service} `));
}

const servers: ReturnType<typeof tmuxServer>[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
});

/** Waits until top has exited, then checks the terminal was given back and nothing is left. */
async function expectCleanExit(t: ReturnType<typeof tmuxServer>, name: string) {
  let after = '';
  await vi.waitFor(
    async () => {
      after = await t.screen(name);
      expect(after).toContain('top-exited rc=');
    },
    { timeout: 15_000, interval: 50 },
  );
  expect(after).toContain('top-exited rc=0');
  // The shell after top still runs: cursor shown, normal screen.
  expect(await t.pane(name)).toEqual({ dead: '0', cursor: '1', alternate: '0' });
  expect(after).toMatch(/^icanon echo *$/m);
  expect(after).not.toContain('SESS/S');
  expect(processesMentioning(t.mark)).toEqual([]);
}

describe('handoff-broker top in a terminal', () => {
  it('shows the services, updates, re-sorts on keys, and quits on q with the terminal restored', async () => {
    const b = await broker([echoService('echo'), echoService('zeta')]);
    const { socket } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    socket.destroy();
    const pid = b.registry.list()[0]!.pid;
    const t = tmuxServer();
    servers.push(t);
    await t.start('top', ['--socket', b.socketPath, '--interval', '200']);

    let screen = '';
    await vi.waitFor(
      async () => {
        screen = await t.screen('top');
        expect(screen).toMatch(new RegExp(`^echo +1 +${pid} `, 'm'));
      },
      { timeout: 30_000, interval: 100 },
    );
    expect(screen).toContain('sort: service');
    expect(screen).toContain('keys: s/S');
    expect(row(screen, 'echo')).toBeLessThan(row(screen, 'zeta'));
    expect(screen).toMatch(/^zeta +0 +- +- +- +[\d.-]+ +- +- +0 +0$/m);

    // New data reaches the screen: a refusal for zeta.
    const refused = await rawHello(
      b.socketPath,
      helloBytes({ serviceName: 'zeta', wantedVersion: '9.9.9' }),
    );
    expect(refused?.result.case).toBe('refused');
    await vi.waitFor(
      async () => expect(await t.screen('top')).toMatch(/^zeta +0 .* 1 +0 +[A-Z_]+:1$/m),
      {
        timeout: 15_000,
        interval: 100,
      },
    );

    await t.keys('top', '7');
    await vi.waitFor(
      async () => {
        screen = await t.screen('top');
        expect(screen).toContain('sort: refused');
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(row(screen, 'zeta')).toBeLessThan(row(screen, 'echo'));

    await t.keys('top', 's');
    await vi.waitFor(
      async () => {
        screen = await t.screen('top');
        expect(screen).toContain('sort: spawn_failed');
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(row(screen, 'echo')).toBeLessThan(row(screen, 'zeta'));
    await t.keys('top', 'S');
    await vi.waitFor(async () => expect(await t.screen('top')).toContain('sort: refused'), {
      timeout: 15_000,
      interval: 50,
    });

    await t.keys('top', 'q');
    await expectCleanExit(t, 'top');
  });

  it('shows a broker it cannot reach, keeps going, and quits on Ctrl-C with the terminal restored', async () => {
    const t = tmuxServer();
    servers.push(t);
    const nowhere = `${t.mark}.sock`;
    await t.start('top', ['--socket', nowhere, '--interval', '200']);
    await vi.waitFor(
      async () =>
        expect(await t.screen('top')).toContain(`! cannot reach the broker at ${nowhere}`),
      { timeout: 30_000, interval: 100 },
    );
    await t.keys('top', 'C-c');
    await expectCleanExit(t, 'top');
  });

  it('gives the terminal back when killed with SIGTERM', async () => {
    const t = tmuxServer();
    servers.push(t);
    await t.start('top', ['--socket', `${t.mark}.sock`, '--interval', '200']);
    await vi.waitFor(async () => expect(await t.screen('top')).toContain('! cannot reach'), {
      timeout: 30_000,
      interval: 100,
    });
    const [pid, ...others] = processesMentioning(t.mark);
    expect(others).toEqual([]);
    process.kill(pid!, 'SIGTERM');
    await expectCleanExit(t, 'top');
  });
});
