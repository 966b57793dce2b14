// The floor under a rolling restart's latency on this machine: a restart
// must boot a replacement daemon, so the same load is measured while a
// standalone demo daemon (no broker, its own socket) boots, serves and
// stops — the CPU a node start-up takes from everything else, and nothing
// of the restart's own work. Measured in the same run as the restarts.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { demoDaemonMain, nodeFlags } from './paths.ts';

/** Boots a demo daemon at `dir/floor-<n>.sock`, waits until it listens, stops it; resolves when it exited. */
export async function bootAndStopDaemon(dir: string, n: number): Promise<void> {
  const child = spawn(
    process.execPath,
    [...nodeFlags(), demoDaemonMain(), '--endpoint', join(dir, `floor-${n}.sock`)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let seen = '';
  const listening = await new Promise<boolean>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (seen.includes('"msg":"listening"')) resolve(true);
    });
    child.once('exit', () => resolve(false));
  });
  if (!listening)
    throw new Error(`the floor daemon exited before it listened: ${seen.slice(-500)}`);
  child.kill('SIGTERM');
  await exited;
  child.stderr.destroy();
}
