// A socket the program is done with must be collectable. Regression for a
// leak the soak campaign found (issue 12): the native watcher held its JS
// callback through a strong reference — a GC root — and the callback closes
// over the socket, so every FdSocket ever opened stayed in memory (about
// 8 KiB a connection in the broker, with its decoder and timers).
import { readdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FdSocket } from '../src/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const openFds = () => readdirSync('/proc/self/fd').length;

/** Collects until every ref is cleared (finalizers may run a turn later). */
async function collected(refs: WeakRef<object>[]): Promise<number> {
  for (let round = 0; round < 50; round++) {
    gc();
    await new Promise((r) => setImmediate(r));
    if (refs.every((r) => r.deref() === undefined)) return 0;
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

// Made in their own frames, so no test variable keeps the last ones alive.
async function exchangeAndClose(refs: WeakRef<object>[], i: number): Promise<void> {
  const [a, b] = FdSocket.pair('stream');
  const got = new Promise<void>((resolve) => b.once('message', () => resolve()));
  a.write(new Uint8Array([i & 0xff]));
  await got;
  a.close();
  b.close();
  refs.push(new WeakRef(a), new WeakRef(b));
}

function dropPair(refs: WeakRef<object>[]): void {
  const [a, b] = FdSocket.pair('stream');
  refs.push(new WeakRef(a), new WeakRef(b));
}

describe('FdSocket and garbage collection', () => {
  it('closed sockets are collected, after they read and wrote', async () => {
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 200; i++) await exchangeAndClose(refs, i);
    await new Promise((r) => setTimeout(r, 10));
    expect(await collected(refs)).toBe(0);
  });

  it('an idle socket dropped without close() is collected and its fd closed', async () => {
    const before = openFds();
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 50; i++) dropPair(refs);
    expect(openFds()).toBe(before + 100);
    await new Promise((r) => setTimeout(r, 10));
    expect(await collected(refs)).toBe(0);
    await expect.poll(openFds).toBe(before);
  });

  it('a paused socket keeps its watcher callback through collections, and reads once resumed', async () => {
    const [a, b] = FdSocket.pair('stream');
    let received = 0;
    b.on('message', ({ data }) => {
      received += data.length;
    });
    // Watching, then not: the addon holds the callback only weakly, so from
    // here only the watcher's own hold on it keeps it.
    await new Promise((r) => setImmediate(r));
    b.pause();
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    b.resume();
    a.write(new Uint8Array(5));
    await expect.poll(() => received).toBe(5);
    a.close();
    b.close();
  });

  it('a socket that is still reading is kept alive, and keeps receiving', async () => {
    const [a, b] = FdSocket.pair('stream');
    let received = 0;
    b.on('message', ({ data }) => {
      received += data.length;
    });
    const ref = new WeakRef(b);
    await new Promise((r) => setImmediate(r));
    gc();
    a.write(new Uint8Array(3));
    await expect.poll(() => received).toBe(3);
    expect(ref.deref()).toBeDefined();
    a.close();
    ref.deref()?.close();
  });
});
