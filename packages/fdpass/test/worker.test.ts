import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { expectFdCount, openFdCount } from './helpers.js';

// The worker loads the package from source through tsx, exactly as tests do.
const workerSource = `
import { parentPort } from 'node:worker_threads';
import { openSync, closeSync } from 'node:fs';
import { register } from 'tsx/esm/api';
register();
// Node tracks fs-opened fds only in workers: it warns when fs closes one it did not open.
const warnings = [];
process.on('warning', (w) => warnings.push(w.message));
const { closeFds, FdSocket, peerCredentials } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)});
const [a, b] = FdSocket.pair();
const file = openSync('/dev/null', 'r');
const got = new Promise((resolve) => b.once('message', resolve));
a.write(Buffer.from('from a worker'), [file, file]);
const m = await got;
// The received fds are new descriptors owned by this worker, made by the
// addon rather than fs: closeFds, never fs.closeSync. fs owns only \`file\`.
closeFds(m.fds);
closeSync(file);
const cred = peerCredentials(a);
a.close();
b.close();
// Warnings are emitted on the next tick.
await new Promise((resolve) => setImmediate(resolve));
parentPort.postMessage({ text: m.data.toString(), fds: m.fds.length, pid: cred.pid, warnings });
`;

interface WorkerResult {
  text: string;
  fds: number;
  pid: number;
  warnings: string[];
}

function runWorker(leaveOpen: boolean): Promise<WorkerResult> {
  const source = leaveOpen
    ? workerSource.replace('a.close();\nb.close();', 'b.on("message", () => {});')
    : workerSource;
  const worker = new Worker(source, {
    eval: true,
    execArgv: ['--conditions=@handoff/source'],
  });
  return new Promise((resolve, reject) => {
    let result: WorkerResult | undefined;
    worker.once('message', (m) => {
      result = m;
      if (leaveOpen) void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', () =>
      result ? resolve(result) : reject(new Error('worker exited early')),
    );
  });
}

describe('worker_threads', () => {
  it('loads the addon in a worker and passes fds there', async () => {
    const before = openFdCount();
    const result = await runWorker(false);
    expect(result).toEqual({ text: 'from a worker', fds: 2, pid: process.pid, warnings: [] });
    await expectFdCount(before);
  });

  it('terminating a worker with sockets still open releases their fds', async () => {
    const before = openFdCount();
    const result = await runWorker(true);
    expect(result.text).toBe('from a worker');
    await expectFdCount(before);
  });

  it('received fds closed in a worker are not closed by fs (no "closed but not opened" warning)', async () => {
    const result = await runWorker(false);
    expect(result.warnings).toEqual([]);
  });

  it('two workers at once keep separate addon state', async () => {
    const [x, y] = await Promise.all([runWorker(false), runWorker(false)]);
    expect(x.fds + y.fds).toBe(4);
  });
});
