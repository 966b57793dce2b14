// The dispatcher suite's C master floor (c/dispatchfloor.c) turns a missed
// 2× into "out of reach", so it must really serve: with our own workers, over
// our channel protocol, every connection answered, and a clean stop that
// leaves no worker behind. And a worker that never says READY must fail
// its start, not hang the bench.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childrenOf } from '../src/broker/probe-wire.mjs';
import { buildCProgram } from '../src/c-programs.ts';
import { freePort } from '../src/dispatcher/free-port.ts';

// From source, as every test runs: a fresh clone has no dist/ yet.
const worker = [
  process.execPath,
  '--conditions=@handoff/source',
  '--import',
  'tsx',
  join(import.meta.dirname, '..', 'src', 'dispatcher', 'ours-worker.mjs'),
];

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

async function startFloor(command: string[]) {
  const binary = await buildCProgram('dispatchfloor');
  const port = await freePort();
  const child = spawn(binary, [String(port), '2', ...command], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return { child, port, stderr: () => stderr };
}

function hello(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('dispatchfloor', () => {
  it('serves every connection through our workers and stops leaving none behind', async () => {
    const { child, port, stderr } = await startFloor(worker);
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    expect(line.toString()).toBe('ready\n');
    const workers = childrenOf(child.pid!);
    expect(workers).toHaveLength(2);

    // More connections than one batch, some in parallel: all answered.
    const bodies = await Promise.all(Array.from({ length: 40 }, () => hello(port)));
    expect(new Set(bodies)).toEqual(new Set(['hello world\n']));
    for (let i = 0; i < 5; i++) expect(await hello(port)).toBe('hello world\n');

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    for (const pid of workers) expect(existsSync(`/proc/${pid}`)).toBe(false);
    // Workers drained with their channel still open: nothing to complain about.
    expect(stderr()).toBe('');
  }, 30_000);

  it('fails its start, exit 1, when a worker never answers READY', async () => {
    const { child, stderr } = await startFloor(['/bin/true']);
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr()).toContain('did not answer READY');
  }, 30_000);
});
