// Child program of the fdpass suite's spawn case: with a heap the size of a
// busy broker's, how long does starting one process block the caller's
// thread, through fdpass's spawnProcess (posix_spawn on this thread),
// spawnProcessAsync (posix_spawn on a pool thread: this thread only
// prepares the fds) and child_process.spawn (fork)? They take turns in one
// process, so all see the same heap. Prints one JSON object: the ms each
// call kept this thread, per spawn.
import { spawn } from 'node:child_process';
import { type EventEmitter, once } from 'node:events';
import { spawnProcess, spawnProcessAsync } from '@handoff/fdpass';

const heapMb = Number(process.argv[2] ?? 150);
const spawns = Number(process.argv[3] ?? 40);

// Live objects, not one big buffer: fork copies page tables, which a
// fragmented JS heap fills the way a broker's does.
const keep: unknown[] = [];
while (process.memoryUsage().rss < heapMb * 1024 * 1024) {
  for (let i = 0; i < 10_000; i++) keep.push({ i, s: `entry ${i}`, list: [i, i * 2] });
}

// The program both start: a Node process that exits at once, as a daemon's binary is.
const program = process.execPath;
const args = ['-e', ''];

/** How long start() kept this thread; resolves once the child has exited. */
async function timed(start: () => EventEmitter | Promise<EventEmitter>): Promise<number> {
  const started = performance.now();
  const child = start();
  const blocked = performance.now() - started;
  await once(await child, 'exit');
  return blocked;
}

const quiet = { stdio: ['ignore', 'ignore', 'ignore'], detached: true } as const;
const ours = () => timed(() => spawnProcess(program, args, quiet));
const oursAsync = () => timed(() => spawnProcessAsync(program, args, quiet));
const nodeSpawn = () => timed(() => spawn(program, args, { stdio: 'ignore', detached: true }));

const samples = { ours: [] as number[], async: [] as number[], node: [] as number[] };
const kinds = [
  ['ours', ours],
  ['async', oursAsync],
  ['node', nodeSpawn],
] as const;
for (const [, run] of kinds) await run();
for (let i = 0; i < spawns; i++) {
  // Rotate the order, so none always follows another's exit.
  for (let k = 0; k < kinds.length; k++) {
    const [name, run] = kinds[(i + k) % kinds.length]!;
    samples[name].push(await run());
  }
}
process.stdout.write(
  `${JSON.stringify({ rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), keep: keep.length, ...samples })}\n`,
);
