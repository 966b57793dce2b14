// A real `handoff-broker serve` process for the lifecycle cases, driven the
// way an operator drives it: started from the compiled CLI, asked over the
// admin protocol (STATUS, LIST_INSTANCES, UPGRADE, RESTART), signalled
// (SIGHUP, SIGTERM). After an upgrade the serving process is the successor,
// which is not our child, so processes are followed by pid from STATUS.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adminRequest } from '@handoff/broker/client';
import { AdminVerb } from '@handoff/protocol';
import { brokerCli, demoDaemonMain, nodeFlags } from './paths.ts';

export interface DemoKvDefinitionOptions {
  /** The daemon's own drain on SIGTERM (`--drain-ms`, default 2000 ms). */
  drainMs?: number;
  /** The definition's `drainMs` (a rolling restart's drain; absent: the broker's default). */
  restartDrainMs?: number;
  /** Run the daemon through this wrapper script (first argument: the real entry). */
  wrapper?: string;
  env?: Record<string, string>;
  /** The definition's `replacementNice` (absent: the broker's default). */
  replacementNice?: number;
}

/** A service definition for the compiled demo daemon, written where `serve --config-file` reads it. */
export function writeDemoKvDefinition(file: string, options: DemoKvDefinitionOptions = {}): void {
  const drainMs = options.drainMs ?? 2000;
  const entry = demoDaemonMain();
  const definition = {
    name: 'demo-kv',
    version: '1.0.0',
    command: process.execPath,
    args: [
      ...nodeFlags(),
      ...(options.wrapper === undefined ? [] : [options.wrapper]),
      entry,
      '--idle-timeout-secs',
      '0',
      '--drain-ms',
      String(drainMs),
    ],
    env: { HANDOFF_LOG_LEVEL: process.env.BENCH_BROKER_LOG_LEVEL ?? 'warn', ...options.env },
    handoff: true,
    readyTimeoutMs: 30_000,
    stopGraceMs: drainMs + 1000,
    ...(options.restartDrainMs === undefined ? {} : { drainMs: options.restartDrainMs }),
    ...(options.replacementNice === undefined ? {} : { replacementNice: options.replacementNice }),
  };
  writeFileSync(file, `${JSON.stringify(definition, null, 2)}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** True while a process of that pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Waits for a process that is not our child to be gone. There is no exit
 * event for those in Node (no pidfd), so this polls every 10 ms.
 */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (alive(pid)) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

export class ServeProcess {
  readonly socketPath: string;
  readonly logPath: string;
  private first: ChildProcess | null = null;
  /** The pid of the broker serving now (the successor after an upgrade). */
  pid = 0;

  constructor(
    readonly dir: string,
    readonly configFile: string,
  ) {
    this.socketPath = join(dir, 'run', 'broker.sock');
    this.logPath = join(dir, 'serve.log');
    mkdirSync(join(dir, 'state'), { recursive: true, mode: 0o700 });
  }

  /** Starts `handoff-broker serve` and resolves once it answers STATUS. */
  async start(): Promise<void> {
    const log = openSync(this.logPath, 'a');
    try {
      this.first = spawn(
        process.execPath,
        [
          ...nodeFlags(),
          brokerCli(),
          'serve',
          // A throwaway broker in a temp dir; benchmarks run as root on CI machines.
          '--allow-root',
          // The benches measure the broker's own throughput, not its per-uid Hello limit.
          '--hello-rate',
          '0',
          '--socket',
          this.socketPath,
          '--config-file',
          this.configFile,
          '--drain',
          '2000',
        ],
        {
          stdio: ['ignore', log, log],
          env: {
            ...process.env,
            HANDOFF_LOG_LEVEL: process.env.BENCH_BROKER_LOG_LEVEL ?? 'warn',
            XDG_STATE_HOME: join(this.dir, 'state'),
            XDG_RUNTIME_DIR: join(this.dir, 'run'),
          },
        },
      );
    } finally {
      closeSync(log);
    }
    const child = this.first;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) =>
        reject(
          new Error(`serve exited (${code ?? signal}) before it was ready:\n${this.logTail()}`),
        ),
      ),
    );
    exited.catch(() => {});
    const status = await Promise.race([this.waitStatus(30_000), exited]);
    this.pid = status.pid;
  }

  /** STATUS as JSON, retried every 20 ms until it answers or `timeoutMs` passes. */
  async waitStatus(timeoutMs: number, notPid = 0): Promise<{ pid: number }> {
    const deadline = performance.now() + timeoutMs;
    let last: unknown = null;
    for (;;) {
      try {
        const status = await this.status();
        if (status.pid !== notPid) return status;
        last = new Error(`still pid ${notPid}`);
      } catch (error) {
        last = error;
      }
      if (performance.now() > deadline)
        throw new Error(`the broker did not answer STATUS within ${timeoutMs} ms: ${String(last)}`);
      await sleep(20);
    }
  }

  async status(): Promise<{ pid: number }> {
    const reply = await adminRequest(
      this.socketPath,
      { verb: AdminVerb.STATUS, json: true },
      { timeoutMs: 2000 },
    );
    return JSON.parse(reply.body) as { pid: number };
  }

  /** The demo-kv daemons the broker lists (an old one may still be draining). */
  async daemons(): Promise<{ pid: number; state: string }[]> {
    const reply = await adminRequest(
      this.socketPath,
      { verb: AdminVerb.LIST_INSTANCES, json: true, serviceName: 'demo-kv' },
      { timeoutMs: 2000 },
    );
    const { instances } = JSON.parse(reply.body) as {
      instances: { pid: number | null; state: string }[];
    };
    return instances.flatMap((i) => (i.pid === null ? [] : [{ pid: i.pid, state: i.state }]));
  }

  /** Sends an admin verb and throws unless the broker answered with exit code 0. */
  async admin(
    verb: AdminVerb,
    fields: { serviceName?: string; readyDeadlineMs?: bigint } = {},
  ): Promise<string> {
    const reply = await adminRequest(
      this.socketPath,
      { verb, json: true, ...fields },
      { timeoutMs: 60_000 },
    );
    if (reply.exitCode !== 0)
      throw new Error(
        `admin ${AdminVerb[verb] ?? verb} failed (exit ${reply.exitCode}): ${reply.body.trim()}`,
      );
    return reply.body;
  }

  /**
   * One upgrade, by the admin verb or by SIGHUP; resolves once a new broker
   * answers STATUS and the old process is gone, with how long each took.
   */
  async upgrade(
    via: 'admin' | 'sighup',
  ): Promise<{ servingMs: number; oldGoneMs: number; switchMs: number | null }> {
    const old = this.pid;
    const t0 = performance.now();
    let switchMs: number | null = null;
    // The verb's answer says how long the old broker had stopped accepting (clients in the backlog).
    if (via === 'admin')
      switchMs =
        (JSON.parse(await this.admin(AdminVerb.UPGRADE)) as { switch_ms?: number }).switch_ms ??
        null;
    else process.kill(old, 'SIGHUP');
    const status = await this.waitStatus(30_000, old);
    const servingMs = performance.now() - t0;
    this.pid = status.pid;
    if (!(await waitGone(old, 30_000)))
      throw new Error(`the old broker (pid ${old}) was still running 30 s after the upgrade`);
    return { servingMs, oldGoneMs: performance.now() - t0, switchMs };
  }

  /** SIGTERM to the serving broker; resolves once it is gone. */
  async stop(): Promise<void> {
    if (this.pid === 0) return;
    const pid = this.pid;
    this.pid = 0;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    if (!(await waitGone(pid, 20_000))) {
      process.kill(pid, 'SIGKILL');
      await waitGone(pid, 5000);
    }
  }

  /** Last resort on a failed case: SIGKILL whatever is left of ours. */
  kill(): void {
    for (const pid of [this.pid, this.first?.pid ?? 0])
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
  }

  logTail(): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
