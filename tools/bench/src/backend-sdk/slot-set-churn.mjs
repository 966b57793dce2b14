// One child of the `slot_set.churn` case: churns `total` stand-in connections
// through a collection of open ones — a Set (baseline) or the SDK's
// SlotSet — with `live` open at a time, closing a random one for each new
// one, as a server under load does. A stand-in is a small object graph
// (the size of a node:http connection's young objects: ~5 KiB) allocated
// when it opens and dropped when it closes. A first `total` churns untimed:
// the cost shows once the old generation has filled, as in a server that
// has run a while. Prints one JSON line: the rate and the GC pause of the
// second `total`, from a fresh heap so neither side inherits the other's.
//   slot-set-churn.mjs <set|slots> <live> <total>
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { SlotSet } from '@handoff/backend-sdk';

const [kind, liveArg, totalArg] = process.argv.slice(2);
const live = Number(liveArg);
const total = Number(totalArg);

let measuredFrom = Number.POSITIVE_INFINITY;
let gcMs = 0;
let gcCount = 0;
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.startTime < measuredFrom) continue;
    gcMs += e.duration;
    gcCount++;
  }
});
observer.observe({ entryTypes: ['gc'] });

function openConnection(id) {
  const state = { id, chunks: [], headers: {}, listeners: [] };
  for (let i = 0; i < 8; i++) state.chunks.push(new Array(64).fill(id));
  for (let i = 0; i < 12; i++) state.headers[`h${i}`] = `value ${id} ${i}`;
  for (let i = 0; i < 6; i++) state.listeners.push(() => state.id + i);
  return state;
}

const collections = {
  set: () => {
    const open = new Set();
    return {
      add: (c) => {
        open.add(c);
        return c; // a Set finds a member by itself
      },
      remove: (c) => open.delete(c),
      size: () => open.size,
    };
  },
  slots: () => {
    const open = new SlotSet();
    return {
      add: (c) => ({ c, slot: open.add(c) }),
      remove: (t) => open.delete(t.slot, t.c),
      size: () => open.size,
    };
  },
};

/** Opens `count` stand-ins, closing a pseudo-random open one for each beyond `live`. */
function churn(open, ring, from, count) {
  for (let id = from; id < from + count; id++) {
    ring.push(open.add(openConnection(id)));
    if (ring.length > live) {
      const at = (id * 7919) % ring.length;
      const victim = ring[at];
      ring[at] = ring[ring.length - 1];
      ring.pop();
      open.remove(victim);
    }
  }
}

const open = collections[kind]();
const ring = [];
churn(open, ring, 0, total);
measuredFrom = performance.now();
const t0 = process.hrtime.bigint();
churn(open, ring, total, total);
const ns = Number(process.hrtime.bigint() - t0);
// GC entries arrive asynchronously: let the observer catch up.
setTimeout(() => {
  observer.disconnect();
  process.stdout.write(
    `${JSON.stringify({ kind, open: open.size(), ops_per_s: (total * 1e9) / ns, gc_ms: gcMs, gc_count: gcCount })}\n`,
  );
}, 50);
