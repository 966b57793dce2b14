// The processes under soak: a private temp directory (0700) for every
// socket, a broker started as a child process from source serving the demo
// daemon from a config file, the daemon's pid and endpoint from the
// broker's admin socket, its SIGKILLs, and a shutdown that checks nothing
// is left running. Traffic and sampling are other files'.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminRequest } from '@handoff/broker';
import { demoKvServiceDefinition } from '@handoff/demo-daemon';
import { AdminVerb } from '@handoff/protocol';
import { childrenByParent, markProcess, type ProcessMark, stillRunning } from './proc.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BROKER_MAIN = join(REPO_ROOT, 'packages/broker/src/cli/main.ts');
/** Lines of the broker's stderr kept for the summary when something goes wrong. */
const STDERR_TAIL_LINES = 30;

export class SoakSetupError extends Error {
  override readonly name = 'SoakSetupError';
  readonly code: 'BROKER_START' | 'DAEMON_START';
  constructor(code: SoakSetupError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export interface DaemonInstance {
  pid: number;
  endpoint: string;
  startedAtUnixMs: number;
}

export class SoakProcesses {
  readonly dir: string;
  readonly brokerSocket: string;
  private readonly broker: ChildProcess;
  readonly brokerPid: number;
  private readonly brokerMark: ProcessMark | undefined;
  /** Every daemon seen, by pid; small (one per kill) and needed to prove each one is gone at the end. */
  private readonly daemons = new Map<number, ProcessMark>();
  private readonly tail: string[] = [];
  private exited = false;

  private constructor(dir: string, brokerSocket: string, broker: ChildProcess) {
    this.dir = dir;
    this.brokerSocket = brokerSocket;
    this.broker = broker;
    this.brokerPid = broker.pid!;
    this.brokerMark = markProcess(this.brokerPid);
    broker.once('exit', () => {
      this.exited = true;
    });
    let partial = '';
    broker.stderr!.setEncoding('utf8');
    broker.stderr!.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!.slice(-2000);
      for (const line of lines) {
        this.tail.push(line.slice(0, 2000));
        if (this.tail.length > STDERR_TAIL_LINES) this.tail.shift();
      }
    });
  }

  /** Starts the broker (from source, as `npm run handoff-broker -- serve` would) and waits until it answers. */
  static async start(): Promise<SoakProcesses> {
    // Short, so every socket path stays far under the 108-byte limit.
    const dir = mkdtempSync(join(tmpdir(), 'soak-'));
    const configDir = join(dir, 'config');
    mkdirSync(configDir, { mode: 0o700 });
    const configFile = join(configDir, 'demo-kv.json');
    // idleTimeoutSecs 0: the daemon never leaves by itself, so a changed pid
    // always means one of our kills. logLevel warn: per-connection info
    // lines would cost more CPU than the traffic.
    const definition = demoKvServiceDefinition({
      idleTimeoutSecs: 0,
      logLevel: 'warn',
      drainMs: 1000,
    });
    writeFileSync(configFile, `${JSON.stringify(definition, null, 2)}\n`, { mode: 0o600 });
    const brokerSocket = join(dir, 'broker.sock');
    const broker = spawn(
      process.execPath,
      [
        '--conditions=@handoff/source',
        '--import',
        'tsx',
        BROKER_MAIN,
        'serve',
        // A throwaway broker in a temp dir; the soak runs as root in CI.
        '--allow-root',
        '--socket',
        brokerSocket,
        '--config-file',
        configFile,
        '--drain',
        '2000',
      ],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          ...process.env,
          HANDOFF_BROKER_SOCKET: brokerSocket,
          HANDOFF_LOG_LEVEL: 'warn',
          XDG_RUNTIME_DIR: dir,
          XDG_CONFIG_HOME: configDir,
          XDG_STATE_HOME: join(dir, 'state'),
          XDG_CACHE_HOME: join(dir, 'cache'),
        },
      },
    );
    if (broker.pid === undefined) {
      rmSync(dir, { recursive: true, force: true });
      throw new SoakSetupError('BROKER_START', `cannot spawn ${process.execPath}`);
    }
    const processes = new SoakProcesses(dir, brokerSocket, broker);
    try {
      await processes.waitForBroker(60_000);
    } catch (error) {
      await processes.shutdown();
      throw error;
    }
    return processes;
  }

  private async waitForBroker(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) {
        throw new SoakSetupError(
          'BROKER_START',
          `the broker exited during start: ${this.stderrTail().join(' | ')}`,
        );
      }
      try {
        const reply = await adminRequest(
          this.brokerSocket,
          { verb: AdminVerb.HEALTHZ, json: true },
          { timeoutMs: 2000 },
        );
        if (reply.exitCode === 0) return;
      } catch {
        // Not listening yet: a cold tsx start takes seconds on a loaded machine.
      }
      if (Date.now() > deadline) {
        throw new SoakSetupError(
          'BROKER_START',
          `the broker did not answer within ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  stderrTail(): string[] {
    return [...this.tail];
  }

  /** The running demo-kv instance the broker knows, when one is ready. */
  async daemon(): Promise<DaemonInstance | undefined> {
    const reply = await adminRequest(
      this.brokerSocket,
      { verb: AdminVerb.LIST_INSTANCES, json: true, serviceName: 'demo-kv' },
      { timeoutMs: 5000 },
    );
    const { instances } = JSON.parse(reply.body) as {
      instances: {
        pid: number | null;
        endpoint: string;
        state: string;
        started_at_unix_ms: number;
      }[];
    };
    const ready = instances.find((i) => i.state === 'ready' && i.pid !== null);
    if (!ready) return undefined;
    this.remember(ready.pid!);
    return { pid: ready.pid!, endpoint: ready.endpoint, startedAtUnixMs: ready.started_at_unix_ms };
  }

  /** The broker's children right now (the daemons it spawned), noted for the end-of-run check. */
  brokerChildren(children = childrenByParent()): number[] {
    const pids = children.get(this.brokerPid) ?? [];
    for (const pid of pids) this.remember(pid);
    return pids;
  }

  private remember(pid: number): void {
    if (this.daemons.has(pid)) return;
    const mark = markProcess(pid);
    if (mark) this.daemons.set(pid, mark);
  }

  /**
   * SIGKILLs the ready daemon. Only a child of our broker is ever signalled:
   * the pid comes from the broker's own list and is checked against /proc.
   */
  async killDaemon(): Promise<number | undefined> {
    const instance = await this.daemon();
    if (!instance || !this.brokerChildren().includes(instance.pid)) return undefined;
    process.kill(instance.pid, 'SIGKILL');
    return instance.pid;
  }

  /**
   * Stops the broker (SIGTERM: it stops its daemons), SIGKILLs whatever
   * outlives the deadline, removes the temp directory, and returns what was
   * still running or left in the directory (empty when clean).
   */
  async shutdown(deadlineMs = 15_000): Promise<{ leftBehind: string[]; socketsLeft: string[] }> {
    this.brokerChildren();
    if (!this.exited) {
      const exit = once(this.broker, 'exit');
      this.broker.kill('SIGTERM');
      const timer = setTimeout(() => this.broker.kill('SIGKILL'), deadlineMs);
      await exit;
      clearTimeout(timer);
    }
    const leftBehind: string[] = [];
    if (this.brokerMark && stillRunning(this.brokerMark))
      leftBehind.push(`broker pid ${this.brokerPid}`);
    // The broker waits for its daemons before it exits; give a straggler the
    // same deadline, then make sure.
    const until = Date.now() + deadlineMs;
    for (const mark of this.daemons.values()) {
      while (stillRunning(mark) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      if (stillRunning(mark)) {
        leftBehind.push(`daemon pid ${mark.pid}`);
        process.kill(mark.pid, 'SIGKILL');
      }
    }
    const socketsLeft = socketFiles(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
    return { leftBehind, socketsLeft };
  }

  /** Last resort on a crash of the runner itself: nothing may outlive it. */
  killNow(): void {
    for (const mark of [this.brokerMark, ...this.daemons.values()]) {
      if (mark && stillRunning(mark)) process.kill(mark.pid, 'SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function socketFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isSocket()) out.push(path.slice(dir.length + 1));
    }
  };
  walk(dir);
  return out;
}
