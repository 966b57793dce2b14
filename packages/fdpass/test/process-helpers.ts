// Spawning the fixture peers for the integration tests: the Node peer runs
// the package from source through tsx, the Python peer is stdlib only.
// Every child is tracked and killed in cleanup, so no test leaves one behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach } from 'vitest';
import { expectFdCount, makeTempDir, openFdCount, type TempDir } from './helpers.js';

export const nodePeerPath = fileURLToPath(new URL('./fixtures/node-peer.ts', import.meta.url));
export const pythonPeerPath = fileURLToPath(new URL('./fixtures/py_peer.py', import.meta.url));
const packageRoot = fileURLToPath(new URL('..', import.meta.url));

export interface Peer {
  child: ChildProcess;
  /** Resolves with the first JSON line for which `match` is true. */
  line<T = Record<string, unknown>>(match?: (value: T) => boolean): Promise<T>;
  exited: Promise<number | null>;
  stderr(): string;
}

const running = new Set<ChildProcess>();

export function nodePeerArgs(args: readonly string[]): string[] {
  return ['--conditions=@handoff/source', '--import', 'tsx', nodePeerPath, ...args];
}

/** Shell-quotes for the `bash -c` wrappers that set resource limits. */
export function shellQuote(parts: readonly string[]): string {
  return parts.map((p) => `'${p.replaceAll("'", `'\\''`)}'`).join(' ');
}

export function spawnPeer(
  command: string,
  args: readonly string[],
  options: { cwd?: string } = {},
): Peer {
  const child = spawn(command, args, {
    cwd: options.cwd ?? packageRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: unknown[] = [];
  const waiters: Array<{ match: (v: unknown) => boolean; resolve: (v: unknown) => void }> = [];
  let buffered = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    for (;;) {
      const nl = buffered.indexOf('\n');
      if (nl < 0) break;
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        continue;
      }
      lines.push(value);
      for (const w of [...waiters]) {
        if (w.match(value)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(value);
        }
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    });
  });
  return {
    child,
    exited,
    stderr: () => err,
    line<T>(match: (value: T) => boolean = () => true): Promise<T> {
      const found = lines.find((v) => match(v as T));
      if (found !== undefined) return Promise.resolve(found as T);
      return new Promise<T>((resolve, reject) => {
        waiters.push({ match: (v) => match(v as T), resolve: (v) => resolve(v as T) });
        void exited.then((code) =>
          reject(new Error(`peer exited (${code}) before the expected line; stderr:\n${err}`)),
        );
      });
    },
  };
}

export function spawnNodePeer(args: readonly string[]): Peer {
  return spawnPeer(process.execPath, nodePeerArgs(args));
}

export async function killAllPeers(): Promise<void> {
  const waits = [...running].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(waits);
}

/**
 * Per-test sandbox for process-spawning tests: a fresh temp dir, and after
 * each test every peer killed and the fd count back to where it started.
 * Call at module level; read the current dir through the returned getter.
 */
export function usePeerSandbox(): { readonly dir: TempDir } {
  let dir: TempDir | undefined;
  let baseline = 0;
  beforeEach(() => {
    dir = makeTempDir();
    baseline = openFdCount();
  });
  afterEach(async () => {
    try {
      await killAllPeers();
      await expectFdCount(baseline);
    } finally {
      dir?.cleanup();
    }
  });
  return {
    get dir() {
      if (!dir) throw new Error('usePeerSandbox: no test is running');
      return dir;
    },
  };
}
