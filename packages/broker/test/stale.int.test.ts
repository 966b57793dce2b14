// Stale daemons (lifecycle/stale-watch.ts) with real files and real
// watches: a content change of the entry script rolls the service, a touch
// (new mtime, same bytes) does not; a closed watch holds no fd. End to end,
// a broker replaces the running daemon of a `restartOnChange` service.
import { watch as fsWatch, utimesSync, writeFileSync } from 'node:fs';
import { FrameClient } from '@handoff/backend-sdk';
import { describe, expect, it } from 'vitest';
import type { Backend, BackendRegistry } from '../src/backend-registry.js';
import { connectService } from '../src/client/connect-service.js';
import { parseServiceDefinition, type ServiceDefinition } from '../src/config/definition.js';
import { StaleWatch } from '../src/lifecycle/stale-watch.js';
import { liveBrokers, P } from './broker-session.js';
import { echoService, openFds, str, tempDir, text } from './harness.js';

const { broker, dirs } = liveBrokers();

function entryFile(content: string) {
  const dir = tempDir('stale');
  dirs.push(dir);
  const file = dir.path('entry.js');
  writeFileSync(file, content);
  return file;
}

/** Resolves with `changed` of the next 'checked' event for `file`. */
function nextCheck(watch: StaleWatch, file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const on = (checked: string, changed: boolean) => {
      if (checked !== file) return;
      watch.off('checked', on);
      resolve(changed);
    };
    watch.on('checked', on);
  });
}

describe('stale daemons', () => {
  it('rolls on a content change (SHA-256), not on a touch, and leaks nothing', async () => {
    const file = entryFile('v1');
    // libuv opens one inotify fd per loop, for good, at the first watch: not ours to count.
    fsWatch(file).close();
    const before = openFds();
    const definition = parseServiceDefinition(
      echoService('echo', { restartOnChange: true, entryScript: file }),
      'test',
    );
    const restarted: ServiceDefinition[] = [];
    const watch = new StaleWatch({
      running: () => true,
      restart: async (d) => {
        restarted.push(d);
        return {
          key: 'echo@1.0.0',
          oldPid: 1,
          newPid: 2,
          endpoint: '',
          tookMs: 0,
          drainMs: 0,
          retired: Promise.resolve(),
        };
      },
      log: () => {},
      debounceMs: 50,
    });
    watch.update([definition]);
    // Let the baseline hash settle before the first event.
    await new Promise((resolve) => setImmediate(resolve));
    const touched = nextCheck(watch, file);
    const later = new Date(Date.now() + 60_000);
    utimesSync(file, later, later);
    expect(await touched).toBe(false);
    expect(restarted).toEqual([]);
    const changed = nextCheck(watch, file);
    writeFileSync(file, 'v2');
    expect(await changed).toBe(true);
    expect(restarted).toEqual([definition]);
    await watch.close();
    expect(openFds()).toBe(before);
  });

  it('replaces the running daemon when its entry script changes', async () => {
    const file = entryFile('v1');
    const b = await broker([
      echoService('echo', { restartOnChange: true, entryScript: file }, ['--pid-prefix']),
    ]);
    const registry = b.registry as unknown as BackendRegistry;
    const ask = async () => {
      const { socket } = await connectService('echo', {
        version: '1.0.0',
        brokerPath: b.socketPath,
        timeoutMs: 30_000,
      });
      const client = new FrameClient(socket);
      const pid = Number(str((await client.request(P, text('x'))).payload).split(':')[0]);
      client.close();
      return pid;
    };
    const oldPid = await ask();
    const promoted = new Promise<Backend>((resolve) => registry.once('promoted', resolve));
    writeFileSync(file, 'v2');
    const replacement = await promoted;
    expect(replacement.pid).not.toBe(oldPid);
    expect(await ask()).toBe(replacement.pid);
  });
});
