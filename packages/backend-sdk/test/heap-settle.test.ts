// collectGarbageNow runs a real full collection (an object only a WeakRef
// holds is gone after it) without putting `gc` on this process's global,
// and BrokerAttachment.start() runs one before its first attach unless told
// not to (seen through V8's own 'gc' performance entries).
import { PerformanceObserver, constants as perf } from 'node:perf_hooks';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerAttachment, collectGarbageNow } from '../src/index.js';
import { tempDir } from './harness.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A WeakRef to an object nothing else holds (created in its own job). */
function weaklyHeld(): WeakRef<object> {
  return new WeakRef({ payload: new Uint8Array(1024) });
}

/** Counts V8's major (mark-compact) collections while `fn` runs. */
async function majorCollectionsDuring(fn: () => void): Promise<number> {
  let majors = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perf.NODE_PERFORMANCE_GC_MAJOR) majors++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    fn();
    // Entries are delivered asynchronously.
    for (let i = 0; i < 20 && majors === 0; i++) await tick();
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    observer.disconnect();
  }
  return majors;
}

describe('collectGarbageNow', () => {
  it('collects what only a WeakRef holds, and says how long it took', async () => {
    const ref = weaklyHeld();
    // A WeakRef keeps its target through the job that created it.
    await tick();
    const result = collectGarbageNow();
    expect(result).not.toBeNull();
    expect(result!.ms).toBeGreaterThanOrEqual(0);
    expect(ref.deref()).toBeUndefined();
  });

  it('leaves the global object as it was', () => {
    const before = 'gc' in globalThis;
    collectGarbageNow();
    expect('gc' in globalThis).toBe(before);
  });

  it('is a major collection', async () => {
    expect(await majorCollectionsDuring(() => collectGarbageNow())).toBeGreaterThanOrEqual(1);
  });
});

describe('BrokerAttachment settleHeap', () => {
  const attachment = (settleHeap?: boolean) => {
    const dir = tempDir('heap-settle');
    cleanups.push(() => dir.remove());
    // No broker listens there: start() keeps retrying until close().
    const a = new BrokerAttachment({
      controlPath: dir.path('absent-control.sock'),
      server: { endpoint: dir.path('daemon.sock'), adopt: () => false },
      serviceName: 'demo',
      crashReports: false,
      ...(settleHeap === undefined ? {} : { settleHeap }),
    });
    cleanups.push(() => a.close());
    return a;
  };

  it('collects the boot garbage once, on the first start()', async () => {
    const a = attachment();
    expect(await majorCollectionsDuring(() => a.start())).toBeGreaterThanOrEqual(1);
  });

  it('does not collect again on a second start()', async () => {
    const a = attachment();
    a.start();
    expect(await majorCollectionsDuring(() => a.start())).toBe(0);
  });

  it('settleHeap: false leaves the heap alone', async () => {
    const a = attachment(false);
    expect(await majorCollectionsDuring(() => a.start())).toBe(0);
  });
});
