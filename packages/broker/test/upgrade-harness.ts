// Shared by the upgrade integration tests: `handoff-broker serve` as a real
// child process in a fresh temp dir (its successors are its detached
// children, found by the temp dir in their environment), the CLI asked
// as a process, and client loops doing Hello + one request continuously.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { alive, processesMentioning } from '@handoff/testkit';
import { connectService } from '../src/client/connect-service.js';
import { runBrokerCli } from './cli-process.js';
import { echoService, str, tempDir, text, tsxArgs } from './harness.js';

export const repo = join(import.meta.dirname, '../../..');
export const main = join(import.meta.dirname, '../src/cli/main.ts');
const P = 0xf001;

export interface ServeChild {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<[number | null, string | null]>;
}

export interface UpgradeSetup {
  dir: string;
  socket: string;
  configFile: string;
  /** The serve command line after `node`, as a successor would run it. */
  serveArgs: string[];
  /**
   * Starts serve; with `fd3`, as systemd would (socket activation: fd 3,
   * LISTEN_FDS=1, LISTEN_PID of the node process via `sh -c exec`).
   */
  serve(env?: Record<string, string>, fd3?: number): Promise<ServeChild>;
  /** Kills whatever still runs from this dir, removes it. */
  cleanup(): void;
}

/** A temp dir with a private run/ and `services` (default: one echo service). */
export function upgradeSetup(
  name: string,
  services: unknown[] = [echoService('echo')],
): UpgradeSetup {
  const tmp = tempDir(`upgrade-${name}`);
  mkdirSync(tmp.path('run'), { mode: 0o700 });
  const configFile = tmp.path('services.json');
  writeFileSync(configFile, JSON.stringify({ services }));
  const socket = tmp.path('run/broker.sock');
  const serveArgs = [
    ...tsxArgs,
    main,
    'serve',
    '--config-file',
    configFile,
    '--socket',
    socket,
    '--state-dir',
    tmp.path('state'),
    '--drain',
    '1000',
  ];
  const children: ChildProcess[] = [];
  return {
    dir: tmp.dir,
    socket,
    configFile,
    serveArgs,
    async serve(env = {}, fd3?: number) {
      const activated = fd3 === undefined ? {} : { LISTEN_FDS: '1', LISTEN_FDNAMES: 'broker' };
      const [command, args] =
        fd3 === undefined
          ? [process.execPath, serveArgs]
          : ['sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, ...serveArgs]];
      const child = spawn(command, args, {
        cwd: repo,
        // The dir in the environment finds the successors too (they inherit it).
        env: {
          ...process.env,
          HANDOFF_BROKER_SOCKET: '',
          HANDOFF_LOG_LEVEL: 'info',
          HANDOFF_TEST_DIR: tmp.dir,
          ...activated,
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe', ...(fd3 === undefined ? [] : [fd3])],
      });
      children.push(child);
      let out = '';
      let err = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (err += d));
      const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
      await new Promise<void>((resolve, reject) => {
        // The broker's log is on stderr.
        const onData = () => {
          if (err.includes('"broker listening"')) {
            child.stderr!.off('data', onData);
            resolve();
          }
        };
        child.stderr!.on('data', onData);
        void exited.then(([code]) => reject(new Error(`serve exited with ${code}: ${err}`)));
      });
      return { child, stdout: () => out, stderr: () => err, exited };
    },
    cleanup() {
      for (const pid of processesMentioning(tmp.dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
      }
      for (const child of children) {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }
      tmp.remove();
    },
  };
}

/** `handoff-broker <args> --json --socket S` as a process: exit code and its JSON document. */
export async function cliJson(
  socket: string,
  args: string[],
): Promise<{ code: number; doc: Record<string, unknown>; stderr: string }> {
  const run = await runBrokerCli([...args, '--json', '--socket', socket]);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(run.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`not one JSON document (exit ${run.code}): ${run.stdout} ${run.stderr}`);
  }
  return { code: run.code, doc, stderr: run.stderr };
}

/** The broker's pid, from status --json. */
export async function brokerPid(socket: string): Promise<number> {
  const { doc } = await cliJson(socket, ['status']);
  return doc.pid as number;
}

/** The echo daemons' pids, from list --json. */
export async function daemonPids(socket: string): Promise<number[]> {
  const { doc } = await cliJson(socket, ['list']);
  return (doc.instances as { pid: number }[]).map((i) => i.pid).sort();
}

/** Hello + one echo request, then close. */
export async function echoOnce(socket: string, payload: string): Promise<void> {
  const { socket: conn } = await connectService('echo', {
    version: '1.0.0',
    brokerPath: socket,
    timeoutMs: 20_000,
  });
  const client = new FrameClient(conn);
  try {
    const reply = await client.request(P, text(payload), { timeoutMs: 20_000 });
    if (str(reply.payload) !== payload) throw new Error(`wrong echo: ${str(reply.payload)}`);
  } finally {
    client.close();
  }
}

/** A session opened through the broker and kept: it must outlive every upgrade. */
export async function openSession(socket: string) {
  const { socket: conn } = await connectService('echo', {
    version: '1.0.0',
    brokerPath: socket,
    timeoutMs: 20_000,
  });
  const client = new FrameClient(conn);
  return {
    async echo(payload: string): Promise<string> {
      return str((await client.request(P, text(payload), { timeoutMs: 10_000 })).payload);
    },
    close: () => client.close(),
  };
}

export interface ClientLoops {
  ok(): number;
  failures(): string[];
  /** Stops the loops; resolves once every loop ended its iteration. */
  stop(): Promise<void>;
}

/** `count` loops doing echoOnce back to back; every failure is recorded, none stops a loop. */
export function clientLoops(socket: string, count: number): ClientLoops {
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: count }, async (_, loop) => {
    for (let i = 0; running; i++) {
      try {
        await echoOnce(socket, `l${loop}-${i}`);
        ok++;
      } catch (error) {
        failures.push(`${(error as { code?: string }).code ?? ''} ${(error as Error).message}`);
      }
    }
  });
  return {
    ok: () => ok,
    failures: () => failures,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Resolves once `pid` no longer exists (polled: no event tells us about a process we did not spawn). */
export async function gone(pid: number, timeoutMs = 15_000): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}
