// watchExit against real processes that are not our children (orphans a
// shell left behind, as a broker's predecessor leaves its daemons): the
// exit is seen through a pidfd, and a cancelled watch holds nothing. And
// the registry's stop of such a daemon, which must end with the process
// even when close() has released the registry's own watches.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendRegistry } from '../../src/backend-registry.js';
import { parseServiceDefinition } from '../../src/config/definition.js';
import { waitForExit, watchExit } from '../../src/lifecycle/process-exit.js';
import { SpawnBudget } from '../../src/spawn-budget.js';

const orphans: number[] = [];
afterEach(() => {
  for (const pid of orphans.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
});

/**
 * A `sleep 30` whose parent has exited: no 'exit' event, no waitpid of
 * ours. `ignoreTerm`: it ignores SIGTERM, so only SIGKILL ends it.
 */
async function orphan({ ignoreTerm = false } = {}): Promise<number> {
  const script = ignoreTerm
    ? `(trap '' TERM; exec sleep 30) >/dev/null 2>&1 & echo $!`
    : 'sleep 30 >/dev/null 2>&1 & echo $!';
  const shell = spawn('sh', ['-c', script], {
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

describe('BackendRegistry.stop of a daemon it did not spawn', () => {
  it('ends when the process does, although close() released the watches meanwhile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'registry-stop-'));
    try {
      const pid = await orphan({ ignoreTerm: true });
      const before = pidfds();
      const registry = new BackendRegistry({
        servicesDir: dir,
        controlPath: join(dir, 'control.sock'),
        budget: new SpawnBudget(),
      });
      const definition = parseServiceDefinition(
        { name: 'adopted', version: '1.0.0', command: '/bin/sleep', stopGraceMs: 300 },
        'test',
      );
      const backend = registry.adoptRunning(definition, join(dir, 'adopted.sock'), {
        pid,
        exePath: '/bin/sleep',
        ipcEndpoint: undefined,
        startedAtUnixMs: 0n,
        bootId: '',
        idleTimeoutSecs: undefined,
        exeHashAlgorithm: '',
        exeHash: new Uint8Array(0),
        entryScriptPath: '',
        entryScriptHash: new Uint8Array(0),
      });
      let stopped = false;
      const stopping = registry.stop(backend, 'test').then(() => {
        stopped = true;
      });
      // SIGTERM is ignored: the stop waits for its SIGKILL, 300 ms on.
      // Meanwhile the broker closes and leaves the rest to a successor.
      await registry.close('handing over', { stopBackends: false });
      const t0 = performance.now();
      await Promise.race([stopping, new Promise((r) => setTimeout(r, 3000))]);
      expect(stopped).toBe(true);
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(alive(pid)).toBe(false);
      expect(pidfds()).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
