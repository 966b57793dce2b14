// KvStore: the in-memory cache itself — entries with an optional TTL, LRU
// eviction under an entry cap and a byte cap, counters for STATS, and GETs
// that wait for a key to be set. It knows nothing of sockets or wires: both
// wires reach it through KvService (kv-service.ts).

/** Keys and values are bytes; these caps bound what one entry may hold. */
export const DEFAULT_MAX_KEY_BYTES = 250;
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_ENTRIES = 100_000;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** Each waiting GET holds a timer and a closure: bounded like everything else. */
export const DEFAULT_MAX_WAITERS = 1024;
export const DEFAULT_MAX_WAIT_MS = 60_000;
/** TTLs travel as uint32 milliseconds (about 49.7 days). */
export const MAX_TTL_MS = 0xffff_ffff;

export interface KvStoreOptions {
  maxKeyBytes?: number;
  maxValueBytes?: number;
  maxEntries?: number;
  /** Keys plus values, summed over every entry. */
  maxBytes?: number;
  maxWaiters?: number;
  maxWaitMs?: number;
  /** A monotonic clock in milliseconds (default performance.now); tests pass their own. */
  now?: () => number;
}

export type KvStoreErrorCode = 'INVALID_KEY' | 'INVALID_VALUE' | 'INVALID_ARGUMENT' | 'BUSY';

/** A request the store refuses; the wires turn it into an error answer, never a crash. */
export class KvStoreError extends Error {
  override readonly name = 'KvStoreError';
  readonly code: KvStoreErrorCode;
  constructor(code: KvStoreErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface KvHit {
  /** The store's own copy: read it, do not change it. */
  value: Uint8Array;
  /** 0 when the entry never expires. */
  ttlRemainingMs: number;
}

/** Counters as plain numbers: exact up to 2^53, which no daemon reaches. */
export interface KvStoreStats {
  entries: number;
  bytes: number;
  maxEntries: number;
  maxBytes: number;
  hits: number;
  misses: number;
  sets: number;
  deletes: number;
  expired: number;
  evicted: number;
}

interface Entry {
  value: Uint8Array;
  /** Clock time at which it expires; 0 = never. */
  expiresAt: number;
  /** Key bytes + value bytes, what counts against maxBytes. */
  size: number;
}

interface Waiter {
  resolve(hit: KvHit | undefined): void;
}

export class KvStore {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly maxWaiters: number;
  readonly maxWaitMs: number;
  private readonly now: () => number;
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private waiterCount = 0;
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, sets: 0, deletes: 0, expired: 0, evicted: 0 };

  constructor(options: KvStoreOptions = {}) {
    this.maxKeyBytes = positive(options.maxKeyBytes, DEFAULT_MAX_KEY_BYTES, 'maxKeyBytes');
    this.maxValueBytes = positive(options.maxValueBytes, DEFAULT_MAX_VALUE_BYTES, 'maxValueBytes');
    this.maxEntries = positive(options.maxEntries, DEFAULT_MAX_ENTRIES, 'maxEntries');
    this.maxBytes = positive(options.maxBytes, DEFAULT_MAX_BYTES, 'maxBytes');
    this.maxWaiters = positive(options.maxWaiters, DEFAULT_MAX_WAITERS, 'maxWaiters');
    this.maxWaitMs = positive(options.maxWaitMs, DEFAULT_MAX_WAIT_MS, 'maxWaitMs');
    this.now = options.now ?? (() => performance.now());
  }

  /** The live entry for `key` (and it becomes the most recently used), or undefined. */
  get(key: Uint8Array): KvHit | undefined {
    const id = this.keyId(key);
    const entry = this.live(id);
    if (!entry) {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    this.entries.delete(id);
    this.entries.set(id, entry);
    return this.hit(entry);
  }

  /**
   * Stores a copy of `value` under `key`, replacing any entry, evicting the
   * least recently used entries until both caps hold. `ttlMs` 0 = no expiry.
   */
  set(key: Uint8Array, value: Uint8Array, ttlMs = 0): void {
    const id = this.keyId(key);
    if (value.length === 0) {
      // The line wire has no empty token, so an empty value could be stored
      // but never written back there: refused on both wires alike.
      throw new KvStoreError('INVALID_VALUE', 'the value is empty');
    }
    const size = key.length + value.length;
    if (value.length > this.maxValueBytes || size > this.maxBytes) {
      throw new KvStoreError(
        'INVALID_VALUE',
        `a ${value.length}-byte value is over the ${Math.min(this.maxValueBytes, this.maxBytes - key.length)}-byte cap`,
      );
    }
    if (!Number.isInteger(ttlMs) || ttlMs < 0 || ttlMs > MAX_TTL_MS) {
      throw new KvStoreError('INVALID_ARGUMENT', `ttl ${ttlMs} ms is not from 0 to ${MAX_TTL_MS}`);
    }
    this.remove(id);
    while (this.entries.size >= this.maxEntries || this.bytes + size > this.maxBytes) {
      this.evictOldest();
    }
    // A copy: the caller's bytes are usually a view into a socket buffer,
    // which an entry must neither pin in memory nor see reused.
    const entry: Entry = {
      value: new Uint8Array(value),
      expiresAt: ttlMs === 0 ? 0 : this.now() + ttlMs,
      size,
    };
    this.entries.set(id, entry);
    this.bytes += size;
    this.counters.sets++;
    this.wake(id, entry);
  }

  /** Removes `key`; false when there was no live entry. */
  delete(key: Uint8Array): boolean {
    const id = this.keyId(key);
    if (!this.live(id)) return false;
    this.remove(id);
    this.counters.deletes++;
    return true;
  }

  /**
   * Like get(), but when the key is missing waits up to `waitMs` for a set()
   * of it. Resolves undefined at the deadline, when `signal` aborts, or when
   * the store closes. Throws BUSY when maxWaiters GETs are already waiting.
   */
  async waitFor(key: Uint8Array, waitMs: number, signal?: AbortSignal): Promise<KvHit | undefined> {
    if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > this.maxWaitMs) {
      throw new KvStoreError(
        'INVALID_ARGUMENT',
        `wait ${waitMs} ms is not from 0 to ${this.maxWaitMs}`,
      );
    }
    const found = this.get(key);
    if (found || waitMs === 0 || signal?.aborted) return found;
    if (this.waiterCount >= this.maxWaiters) {
      throw new KvStoreError('BUSY', `${this.maxWaiters} requests are already waiting`);
    }
    const id = this.keyId(key);
    return new Promise<KvHit | undefined>((resolve) => {
      const waiter: Waiter = {
        resolve: (hit) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.forget(id, waiter);
          resolve(hit);
        },
      };
      const onAbort = () => waiter.resolve(undefined);
      const timer = setTimeout(onAbort, waitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(id);
      if (!set) {
        set = new Set();
        this.waiters.set(id, set);
      }
      set.add(waiter);
      this.waiterCount++;
    });
  }

  /** True when `key` has a live entry; unlike get(), counts nothing and keeps the LRU order. */
  has(key: Uint8Array): boolean {
    return this.live(this.keyId(key)) !== undefined;
  }

  /**
   * The live entries, least recently used first (so loading them in order
   * keeps the order), each with its remaining TTL (0: none). For a
   * snapshot handed to a successor daemon (kv-snapshot.ts).
   */
  *liveEntries(): Generator<{ key: Uint8Array; value: Uint8Array; ttlRemainingMs: number }> {
    for (const [id, entry] of [...this.entries]) {
      if (!this.live(id)) continue;
      yield { key: new Uint8Array(Buffer.from(id, 'latin1')), ...this.hit(entry) };
    }
  }

  /** Counters, with expired entries swept first so `entries` and `bytes` are live. */
  stats(): KvStoreStats {
    const now = this.now();
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt !== 0 && entry.expiresAt <= now) {
        this.remove(id);
        this.counters.expired++;
      }
    }
    return {
      entries: this.entries.size,
      bytes: this.bytes,
      maxEntries: this.maxEntries,
      maxBytes: this.maxBytes,
      ...this.counters,
    };
  }

  /** GETs still waiting (their timers are live until they resolve). */
  get waiting(): number {
    return this.waiterCount;
  }

  /** Ends every wait now (they resolve undefined); the entries stay. */
  close(): void {
    for (const set of [...this.waiters.values()]) {
      for (const waiter of [...set]) waiter.resolve(undefined);
    }
  }

  /**
   * Keys are bytes; a latin1 string maps each byte to one char, so it is an
   * exact, cheap Map key. Validates the key on the way.
   */
  private keyId(key: Uint8Array): string {
    if (key.length === 0) throw new KvStoreError('INVALID_KEY', 'the key is empty');
    if (key.length > this.maxKeyBytes) {
      throw new KvStoreError(
        'INVALID_KEY',
        `a ${key.length}-byte key is over the ${this.maxKeyBytes}-byte cap`,
      );
    }
    return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
  }

  /** The entry if it has not expired; an expired one is removed (lazily, on access). */
  private live(id: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.now()) {
      this.remove(id);
      this.counters.expired++;
      return undefined;
    }
    return entry;
  }

  private hit(entry: Entry): KvHit {
    return {
      value: entry.value,
      ttlRemainingMs:
        entry.expiresAt === 0 ? 0 : Math.max(1, Math.ceil(entry.expiresAt - this.now())),
    };
  }

  private remove(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.bytes -= entry.size;
  }

  /** Drops the least recently used entry; one past its TTL counts as expired, not evicted. */
  private evictOldest(): void {
    const first = this.entries.entries().next();
    if (first.done) return;
    const [id, entry] = first.value;
    this.remove(id);
    if (entry.expiresAt !== 0 && entry.expiresAt <= this.now()) this.counters.expired++;
    else this.counters.evicted++;
  }

  private wake(id: string, entry: Entry): void {
    const set = this.waiters.get(id);
    if (!set) return;
    for (const waiter of [...set]) waiter.resolve(this.hit(entry));
  }

  private forget(id: string, waiter: Waiter): void {
    const set = this.waiters.get(id);
    if (!set?.delete(waiter)) return;
    this.waiterCount--;
    if (set.size === 0) this.waiters.delete(id);
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`KvStore ${name} must be a positive integer, not ${value}`);
  }
  return value;
}
