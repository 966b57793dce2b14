import { describe, expect, it } from 'vitest';
import { KvStore, KvStoreError, MAX_TTL_MS } from '../src/kv-store.js';
import { str, text } from './harness.js';

/** A store on a clock the test moves by hand. */
function storeAt(options: ConstructorParameters<typeof KvStore>[0] = {}) {
  const clock = { now: 1000 };
  const store = new KvStore({ now: () => clock.now, ...options });
  return { store, clock };
}

const value = (store: KvStore, key: string) => {
  const hit = store.get(text(key));
  return hit && str(hit.value);
};

describe('KvStore', () => {
  it('sets, gets, replaces and deletes', () => {
    const { store } = storeAt();
    expect(store.get(text('a'))).toBeUndefined();
    store.set(text('a'), text('1'));
    store.set(text('a'), text('22'));
    expect(store.get(text('a'))).toEqual({ value: text('22'), ttlRemainingMs: 0 });
    expect(store.delete(text('a'))).toBe(true);
    expect(store.delete(text('a'))).toBe(false);
    expect(store.stats()).toMatchObject({
      entries: 0,
      bytes: 0,
      hits: 1,
      misses: 1,
      sets: 2,
      deletes: 1,
    });
  });

  it('keeps its own copy of key and value', () => {
    const { store } = storeAt();
    const key = text('k');
    const v = text('abc');
    store.set(key, v);
    v.fill(0x78);
    key.fill(0x79);
    expect(value(store, 'k')).toBe('abc');
  });

  it('treats keys as bytes: a non-UTF-8 key is its own key', () => {
    const { store } = storeAt();
    store.set(new Uint8Array([0xff, 0x00]), text('binary'));
    store.set(new Uint8Array([0xfd, 0x00]), text('other'));
    expect(str(store.get(new Uint8Array([0xff, 0x00]))!.value)).toBe('binary');
  });

  it('expires an entry at its TTL, counting it as expired, not evicted', () => {
    const { store, clock } = storeAt();
    store.set(text('t'), text('v'), 500);
    clock.now += 200;
    expect(store.get(text('t'))?.ttlRemainingMs).toBe(300);
    clock.now += 300;
    expect(store.get(text('t'))).toBeUndefined();
    expect(store.stats()).toMatchObject({ entries: 0, bytes: 0, expired: 1, evicted: 0 });
  });

  it('sweeps expired entries before reporting stats', () => {
    const { store, clock } = storeAt();
    store.set(text('a'), text('v'), 10);
    store.set(text('b'), text('v'));
    clock.now += 10;
    expect(store.stats()).toMatchObject({ entries: 1, bytes: 2, expired: 1 });
  });

  it('evicts the least recently used entry at the entry cap', () => {
    const { store } = storeAt({ maxEntries: 2 });
    store.set(text('a'), text('1'));
    store.set(text('b'), text('2'));
    store.get(text('a')); // b is now the least recently used
    store.set(text('c'), text('3'));
    expect(value(store, 'a')).toBe('1');
    expect(value(store, 'b')).toBeUndefined();
    expect(value(store, 'c')).toBe('3');
    expect(store.stats()).toMatchObject({ entries: 2, evicted: 1 });
  });

  it('evicts until keys plus values fit the byte cap', () => {
    const { store } = storeAt({ maxBytes: 10 });
    store.set(text('a'), text('1234')); // 5 bytes
    store.set(text('b'), text('1234')); // 10
    store.set(text('c'), text('123456')); // 7: both others must go
    expect(store.stats()).toMatchObject({ entries: 1, bytes: 7, evicted: 2 });
  });

  it('counts an expired entry dropped by eviction as expired', () => {
    const { store, clock } = storeAt({ maxEntries: 1 });
    store.set(text('a'), text('1'), 5);
    clock.now += 5;
    store.set(text('b'), text('2'));
    expect(store.stats()).toMatchObject({ expired: 1, evicted: 0 });
  });

  it('refuses what breaks a cap with a typed error, before storing anything', () => {
    const { store } = storeAt({ maxKeyBytes: 4, maxValueBytes: 8, maxBytes: 10 });
    const refused = (fn: () => void) => {
      try {
        fn();
      } catch (error) {
        expect(error).toBeInstanceOf(KvStoreError);
        return (error as KvStoreError).code;
      }
      return 'accepted';
    };
    expect(refused(() => store.set(text(''), text('v')))).toBe('INVALID_KEY');
    expect(refused(() => store.set(text('12345'), text('v')))).toBe('INVALID_KEY');
    expect(refused(() => store.get(text('12345')))).toBe('INVALID_KEY');
    expect(refused(() => store.delete(text('')))).toBe('INVALID_KEY');
    expect(refused(() => store.set(text('k'), text('')))).toBe('INVALID_VALUE');
    expect(refused(() => store.set(text('k'), text('123456789')))).toBe('INVALID_VALUE');
    // Under the value cap, but key + value over the byte cap.
    expect(refused(() => store.set(text('kkkk'), text('1234567')))).toBe('INVALID_VALUE');
    expect(refused(() => store.set(text('k'), text('v'), -1))).toBe('INVALID_ARGUMENT');
    expect(refused(() => store.set(text('k'), text('v'), MAX_TTL_MS + 1))).toBe('INVALID_ARGUMENT');
    expect(refused(() => store.set(text('k'), text('v'), 1.5))).toBe('INVALID_ARGUMENT');
    expect(store.stats()).toMatchObject({ entries: 0, sets: 0 });
  });

  it('rejects nonsense options', () => {
    expect(() => new KvStore({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new KvStore({ maxBytes: Number.NaN })).toThrow(RangeError);
  });
});

describe('KvStore.waitFor', () => {
  it('answers at once when the key is there, or when not asked to wait', async () => {
    const store = new KvStore();
    store.set(text('k'), text('v'));
    expect(str((await store.waitFor(text('k'), 1000))!.value)).toBe('v');
    expect(await store.waitFor(text('missing'), 0)).toBeUndefined();
    expect(store.waiting).toBe(0);
  });

  it('resolves when the key is set, and leaves no waiter behind', async () => {
    const store = new KvStore();
    const waiting = store.waitFor(text('k'), 10_000);
    expect(store.waiting).toBe(1);
    store.set(text('other'), text('x'));
    store.set(text('k'), text('v'), 5000);
    const hit = await waiting;
    expect(str(hit!.value)).toBe('v');
    expect(hit!.ttlRemainingMs).toBeGreaterThan(4000);
    expect(store.waiting).toBe(0);
  });

  it('resolves undefined at its deadline', async () => {
    const store = new KvStore();
    const started = performance.now();
    expect(await store.waitFor(text('k'), 30)).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    expect(store.waiting).toBe(0);
  });

  it('resolves undefined when its signal aborts, or when the store closes', async () => {
    const store = new KvStore();
    const abort = new AbortController();
    const aborted = store.waitFor(text('a'), 60_000, abort.signal);
    const closed = store.waitFor(text('b'), 60_000);
    abort.abort();
    expect(await aborted).toBeUndefined();
    store.close();
    expect(await closed).toBeUndefined();
    expect(store.waiting).toBe(0);
  });

  it('is BUSY past maxWaiters, and refuses a wait over maxWaitMs', async () => {
    const store = new KvStore({ maxWaiters: 2, maxWaitMs: 1000 });
    const first = [store.waitFor(text('a'), 1000), store.waitFor(text('a'), 1000)];
    await expect(store.waitFor(text('b'), 1000)).rejects.toMatchObject({ code: 'BUSY' });
    await expect(store.waitFor(text('b'), 1001)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    store.set(text('a'), text('v'));
    expect((await Promise.all(first)).map((h) => str(h!.value))).toEqual(['v', 'v']);
  });
});
