// The fd store on real fds (memfds): deposit and collect hand over the same
// open files, a name replaces (and closes) its old fd, limits refuse and
// close, uncollected fds expire and are counted, close() and export/import
// leave nothing open.
import { once } from 'node:events';
import { closeFd, duplicateFd } from '@handoff/fdpass';
import { fdText, isOpenFd, memfdWith, openFds } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { FdStore } from '../src/fd-store.js';
import { FdStoreError } from '../src/fd-store-wire.js';

const limits = { fdStoreMax: 4, fdStoreMaxAgeSecs: 60 };
const KEY = 'demo-kv@1.0.0';
const none = new Uint8Array(0);

const stores: FdStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function newStore(): FdStore {
  const store = new FdStore();
  stores.push(store);
  return store;
}

const memfd = (text: string) => memfdWith(text, 'fd-store-test');

describe('FdStore', () => {
  it('collect hands over the deposited files in order, with metadata, and forgets them', () => {
    const baseline = openFds();
    const store = newStore();
    const a = memfd('a');
    const b = memfd('b');
    store.deposit(
      KEY,
      limits,
      [
        { name: 'line:1', metadata: new Uint8Array([7]) },
        { name: 'kv-state', metadata: none },
      ],
      [a, b],
    );
    expect(store.has(KEY)).toBe(true);
    expect(store.counts()).toEqual([{ key: KEY, stored: 2, expired: 0, refused: 0 }]);
    const got = store.collect(KEY);
    expect(got.map((g) => [g.name, fdText(g.fd), [...g.metadata]])).toEqual([
      ['line:1', 'a', [7]],
      ['kv-state', 'b', []],
    ]);
    expect(store.has(KEY)).toBe(false);
    expect(store.collect(KEY)).toEqual([]);
    for (const g of got) closeFd(g.fd);
    expect(openFds()).toBe(baseline);
  });

  it('a deposit under a stored name replaces it and closes the old fd', () => {
    const store = newStore();
    const old = memfd('old');
    store.deposit(KEY, limits, [{ name: 'kv-state', metadata: none }], [old]);
    const fresh = memfd('new');
    store.deposit(KEY, limits, [{ name: 'kv-state', metadata: none }], [fresh]);
    expect(isOpenFd(old)).toBe(false);
    const [got] = store.collect(KEY);
    expect(fdText(got!.fd)).toBe('new');
    closeFd(got!.fd);
  });

  it('refuses a deposit over fdStoreMax whole: every fd of it closed, what was stored kept, counted', () => {
    const store = newStore();
    const kept = memfd('kept');
    store.deposit(KEY, { ...limits, fdStoreMax: 2 }, [{ name: 'a', metadata: none }], [kept]);
    const fds = [memfd('1'), memfd('2')];
    expect(() =>
      store.deposit(
        KEY,
        { ...limits, fdStoreMax: 2 },
        [
          { name: 'b', metadata: none },
          { name: 'c', metadata: none },
        ],
        fds,
      ),
    ).toThrow(expect.objectContaining({ code: 'FD_STORE_FULL' }));
    expect(fds.map(isOpenFd)).toEqual([false, false]);
    expect(store.counts()).toEqual([{ key: KEY, stored: 1, expired: 0, refused: 1 }]);
    // Replacing a stored name does not count against the limit.
    store.deposit(KEY, { ...limits, fdStoreMax: 1 }, [{ name: 'a', metadata: none }], [memfd('x')]);
    expect(isOpenFd(kept)).toBe(false);
  });

  it('refuses everything when fdStoreMax is 0, and a count mismatch, closing the fds', () => {
    const store = newStore();
    const fd = memfd('x');
    expect(() =>
      store.deposit(KEY, { ...limits, fdStoreMax: 0 }, [{ name: 'a', metadata: none }], [fd]),
    ).toThrow(FdStoreError);
    expect(isOpenFd(fd)).toBe(false);
    const two = [memfd('1'), memfd('2')];
    expect(() => store.deposit(KEY, limits, [{ name: 'a', metadata: none }], two)).toThrow(
      expect.objectContaining({ code: 'FD_COUNT_MISMATCH' }),
    );
    expect(two.map(isOpenFd)).toEqual([false, false]);
  });

  it('closes and counts an fd nobody collected within fdStoreMaxAgeSecs', async () => {
    const baseline = openFds();
    const store = newStore();
    const started = Date.now();
    store.deposit(
      KEY,
      { fdStoreMax: 4, fdStoreMaxAgeSecs: 1 },
      [{ name: 'a', metadata: none }],
      [memfd('a')],
    );
    const [key, name] = await once(store, 'expired');
    expect([key, name]).toEqual([KEY, 'a']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect(store.counts()).toEqual([{ key: KEY, stored: 0, expired: 1, refused: 0 }]);
    expect(openFds()).toBe(baseline);
  });

  it('close() closes every fd and refuses later deposits (closing theirs)', () => {
    const baseline = openFds();
    const store = newStore();
    store.deposit(KEY, limits, [{ name: 'a', metadata: none }], [memfd('a')]);
    store.deposit('other@1', limits, [{ name: 'b', metadata: none }], [memfd('b')]);
    store.close();
    expect(openFds()).toBe(baseline);
    const late = memfd('late');
    expect(() => store.deposit(KEY, limits, [{ name: 'a', metadata: none }], [late])).toThrow(
      expect.objectContaining({ code: 'FD_STORE_CLOSED' }),
    );
    expect(isOpenFd(late)).toBe(false);
  });

  it('export() lends a JSON-safe snapshot that import() takes whole in another store', async () => {
    const baseline = openFds();
    const old = newStore();
    old.deposit(
      KEY,
      limits,
      [
        { name: 'line:3', metadata: new Uint8Array([1, 2, 3]) },
        { name: 'kv-state', metadata: none },
      ],
      [memfd('line'), memfd('state')],
    );
    const { state, fds } = old.export();
    // As the upgrade sends it: JSON, and fds duplicated by the kernel.
    const wire = JSON.parse(JSON.stringify(state)) as unknown;
    const copies = fds.map((fd) => duplicateFd(fd));
    old.close();
    const successor = newStore();
    successor.import(wire, copies);
    const got = successor.collect(KEY);
    expect(got.map((g) => [g.name, fdText(g.fd), [...g.metadata]])).toEqual([
      ['line:3', 'line', [1, 2, 3]],
      ['kv-state', 'state', []],
    ]);
    for (const g of got) closeFd(g.fd);
    expect(openFds()).toBe(baseline);
  });

  it('import() keeps the original expiry, and refuses a malformed state closing every fd', async () => {
    const baseline = openFds();
    const store = newStore();
    const now = Date.now();
    const entry = {
      key: KEY,
      name: 'a',
      metadata: '',
      depositedAt: now - 5000,
      expiresAt: now + 200,
      fd: 0,
    };
    store.import({ version: 1, entries: [entry] }, [memfd('a'), memfd('unused')]);
    expect(store.counts()).toEqual([{ key: KEY, stored: 1, expired: 0, refused: 0 }]);
    await once(store, 'expired');
    expect(openFds()).toBe(baseline);
    for (const bad of [
      null,
      { version: 2, entries: [] },
      { version: 1, entries: [{ ...entry, fd: 1 }] },
      { version: 1, entries: [{ ...entry, name: 'bad name' }] },
      { version: 1, entries: [entry, { ...entry, fd: 0 }] },
      { version: 1, entries: [entry, { ...entry }] },
    ]) {
      const fds = [memfd('x')];
      expect(() => store.import(bad, fds)).toThrow(expect.objectContaining({ code: 'BAD_STATE' }));
      expect(isOpenFd(fds[0]!)).toBe(false);
    }
  });
});
