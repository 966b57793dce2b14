// Shared by the demo-daemon tests: private temp directories, an in-process
// daemon, a line-wire client, and the counters leak checks compare.
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHashCache } from '@handoff/backend-sdk';
import { type DemoDaemon, type DemoDaemonOptions, startDemoDaemon } from '../src/daemon.js';

export const app = join(import.meta.dirname, '..');
export const tsxArgs = ['--conditions=@handoff/source', '--import', 'tsx'];

/** mkdtemp makes the directory 0700: private enough for sockets. */
export function tempDir(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), `handoff-${prefix}-`));
  return {
    dir,
    path: (name: string) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const openFds = () => readdirSync('/proc/self/fd').length;

/** Our live child processes, from every thread's children list. */
export function childPids(): number[] {
  const pids: number[] = [];
  for (const task of readdirSync('/proc/self/task')) {
    const list = readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim();
    if (list) pids.push(...list.split(' ').map(Number));
  }
  // A zombie is dead, just not reaped yet by its parent's exit handler.
  return pids.filter((pid) => !isZombie(pid));
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true; // already gone
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch {
    return false;
  }
}

export const text = (s: string) => new TextEncoder().encode(s);
export const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** Hashing the node binary takes about half a second: once per test file. */
const hashCache = createHashCache();

export function startTestDaemon(
  endpoint: string,
  options: Partial<DemoDaemonOptions> = {},
): Promise<DemoDaemon> {
  return startDemoDaemon({ endpoint, identity: { entryScript: null, hashCache }, ...options });
}

/** A line-wire client: send lines, read answers one line at a time. */
export class LineClient {
  private buffer = '';
  private waiter: (() => void) | null = null;
  private ended = false;
  readonly closed: Promise<void>;

  static async connect(path: string): Promise<LineClient> {
    const socket = connect(path);
    await once(socket, 'connect');
    return new LineClient(socket);
  }

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('latin1');
      this.waiter?.();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.waiter?.();
        resolve();
      }),
    );
  }

  send(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** The next answer line (without \n), or null once the daemon closed the connection. */
  async line(): Promise<string | null> {
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl !== -1) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        return line;
      }
      if (this.ended) return null;
      await new Promise<void>((resolve) => {
        this.waiter = () => {
          this.waiter = null;
          resolve();
        };
      });
    }
  }

  /** Sends one command line and returns its answer. */
  async ask(command: string): Promise<string | null> {
    this.send(`${command}\n`);
    return this.line();
  }

  close(): void {
    this.socket.destroy();
  }
}
