// watchExit against real processes that are not our children (orphans a
// shell left behind, as a broker's predecessor leaves its daemons): the
// exit is seen through a pidfd, and a cancelled watch holds nothing.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { waitForExit, watchExit } from '../../src/lifecycle/process-exit.js';

const orphans: number[] = [];
afterEach(() => {
  for (const pid of orphans.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
});

/** A `sleep 30` whose parent has exited: no 'exit' event, no waitpid of ours. */
async function orphan(): Promise<number> {
  const shell = spawn('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(shell.stdout!, 'data')) as [Buffer];
  await once(shell, 'close');
  const pid = Number(line.toString().trim());
  orphans.push(pid);
  return pid;
}

/** Our fds that are pidfds. */
function pidfds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[pidfd]') n++;
    } catch {}
  }
  return n;
}

describe('watchExit', () => {
  it('sees an orphan exit through a pidfd, and lets the pidfd go with it', async () => {
    const pid = await orphan();
    const before = pidfds();
    const watch = watchExit(pid);
    expect(pidfds()).toBe(before + 1);
    let settled = false;
    void watch.exited.then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    await watch.exited;
    // Well inside the 250 ms a kill(pid, 0) poll would take at worst.
    expect(performance.now() - t0).toBeLessThan(200);
    expect(pidfds()).toBe(before);
  });

  it('cancel() releases the pidfd and the watch never settles', async () => {
    const pid = await orphan();
    const before = pidfds();
    const watch = watchExit(pid);
    let settled = false;
    void watch.exited.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    watch.cancel();
    watch.cancel();
    expect(pidfds()).toBe(before);
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
  });

  it('resolves at once for a pid that names nobody', async () => {
    const gone = spawn('true');
    await once(gone, 'exit');
    const before = pidfds();
    await expect(waitForExit(gone.pid!)).resolves.toBeUndefined();
    expect(pidfds()).toBe(before);
  });
});
