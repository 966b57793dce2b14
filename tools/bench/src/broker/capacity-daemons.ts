// broker.rss.per_attached_daemon: broker RSS (after GC) with 0 … 1,000
// daemons attached — each a real process the broker spawned on a Hello,
// holding its control channel, probed and verified (capacity-tiny-daemon.py:
// a few MB each, where 1,000 Node daemons would need ~40 GB).
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHashCache } from '@handoff/backend-sdk';
import { connectService } from '@handoff/broker';
import { emit, line, summarize } from '../measure.ts';
import {
  type CapacityBroker,
  fit,
  memoryOf,
  startCapacityBroker,
  stopBrokers,
} from './capacity-services.ts';

const PYTHON_CANDIDATES = ['/usr/bin/python3', '/usr/local/bin/python3'];
const PER_FILE = 500;
/** Stop adding daemons when the machine has less than this available. */
const MIN_AVAILABLE_KIB = 3 * 1024 * 1024;

const memAvailableKib = () =>
  Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);

const name = (i: number) => `tiny-${String(i).padStart(4, '0')}`;

async function writeTinyDefinitions(dir: string, count: number, python: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const hashes = await createHashCache().get(python);
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const defs = Array.from({ length: count }, (_, i) => ({
    name: name(i),
    version: '1.0.0',
    command: python,
    args: ['-S', join(import.meta.dirname, 'capacity-tiny-daemon.py')],
    env: {
      HANDOFF_BENCH_EXE_BLAKE3: hex(hashes.blake3),
      HANDOFF_BENCH_EXE_SHA256: hex(hashes.sha256),
    },
    handoff: false,
    readyTimeoutMs: 60_000,
  }));
  for (let f = 0; f * PER_FILE < count; f++)
    writeFileSync(
      join(dir, `tiny-${String(f).padStart(3, '0')}.json`),
      JSON.stringify({ services: defs.slice(f * PER_FILE, (f + 1) * PER_FILE) }),
    );
}

export async function daemonsCase(root: string, counts: readonly number[]): Promise<void> {
  const python = PYTHON_CANDIDATES.map((p) => {
    try {
      return realpathSync(p);
    } catch {
      return null;
    }
  }).find((p) => p !== null);
  const max = Math.max(...counts);
  if (!python) {
    emit({
      ...line('broker.rss.per_attached_daemon', summarize([0]), 'none', summarize([0])),
      ok: false,
      error: 'no python3 for the tiny daemons',
    });
    return;
  }
  const configDir = join(root, `config-tiny-${max}`);
  await writeTinyDefinitions(configDir, max, python);
  let broker: CapacityBroker | undefined;
  try {
    broker = await startCapacityBroker(root, max, { written: configDir });
    const points: { x: number; y: number }[] = [];
    const heap: number[] = [];
    let attached = 0;
    let stoppedEarly: string | null = null;
    const t0 = performance.now();
    for (const target of [...counts].sort((a, b) => a - b)) {
      // Attach daemons up to `target`, 8 spawns at a time.
      while (attached < target && stoppedEarly === null) {
        if (memAvailableKib() < MIN_AVAILABLE_KIB) {
          stoppedEarly = `MemAvailable under ${MIN_AVAILABLE_KIB} KiB at ${attached} daemons`;
          break;
        }
        const batch = Array.from(
          { length: Math.min(8, target - attached) },
          (_, k) => attached + k,
        );
        await Promise.all(
          batch.map(async (i) => {
            const { socket } = await connectService(name(i), {
              version: '1.0.0',
              brokerPath: broker!.socketPath,
              timeoutMs: 120_000,
            });
            socket.destroy();
          }),
        );
        attached += batch.length;
        if (attached % 100 === 0) console.error(`# capacity: ${attached} daemons attached`);
      }
      if (stoppedEarly !== null) break;
      // Let the spawns' buffers and timers settle before sampling.
      await new Promise((r) => setTimeout(r, 1000));
      const m = await memoryOf(broker);
      points.push({ x: attached, y: m.rss });
      heap.push(m.heap);
    }
    const { slope, intercept } = fit(points);
    const heapFit = fit(points.map((p, i) => ({ x: p.x, y: heap[i]! })));
    emit({
      ...line(
        'broker.rss.per_attached_daemon',
        summarize([0]),
        'broker.rss.no_daemons',
        summarize([0]),
      ),
      kib_per_daemon: Number(slope.toFixed(1)),
      heap_kib_per_daemon: Number(heapFit.slope.toFixed(1)),
      intercept_kib: Math.round(intercept),
      definitions: max,
      points: points.map((p, i) => ({ attached: p.x, rss_kib: p.y, heap_used_kib: heap[i] })),
      attach_s: Number(((performance.now() - t0) / 1000).toFixed(1)),
      ...(stoppedEarly ? { stopped_early: stoppedEarly } : {}),
      method:
        'one broker with the definitions loaded; daemons attached by one Hello each (reconnect route: spawn, control channel, verified probe); VmRSS after two gc() at each count; least-squares slope. Daemon: capacity-tiny-daemon.py under python3 -S',
    });
  } finally {
    if (broker) await stopBrokers([broker]);
  }
}
