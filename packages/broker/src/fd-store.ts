// The broker's fd store: named fds a daemon deposited, kept per service key
// (name@version) for the next daemon of that key to collect — a rolling
// restart's replacement, or a respawn after a crash or an idle stop (like
// systemd's FDSTORE=1). Limits come from the definition (fdStoreMax,
// fdStoreMaxAgeSecs); what nobody collects in time is closed and counted.
// Reading the wire is fd-store-wire.ts's; wiring to channels fd-store-wiring.ts's.
import { EventEmitter } from 'node:events';
import { closeQuietly } from './close-quietly.js';
import type { ServiceDefinition } from './config/definition.js';
import {
  FD_STORE_NAME,
  type FdStoreEntry,
  FdStoreError,
  MAX_FD_STORE_METADATA_BYTES,
} from './fd-store-wire.js';

export type FdStoreLimits = Pick<ServiceDefinition, 'fdStoreMax' | 'fdStoreMaxAgeSecs'>;

/** One stored fd as collect() hands it over (the caller then owns `fd`). */
export interface StoredFd {
  name: string;
  fd: number;
  metadata: Uint8Array;
  /** When it was deposited (ms since the epoch). */
  depositedAt: number;
}

/** The status line's figures for one service key. */
export interface FdStoreCount {
  key: string;
  /** Fds held now. */
  stored: number;
  /** Closed because nobody collected them within fdStoreMaxAgeSecs. */
  expired: number;
  /** Deposits refused (their fds closed). */
  refused: number;
}

/** export()'s snapshot, for a successor broker (an upgrade): JSON-safe and versioned. */
export interface FdStoreState {
  version: 1;
  entries: {
    key: string;
    name: string;
    /** base64 */
    metadata: string;
    depositedAt: number;
    expiresAt: number;
    /** Index of its fd in the fds sent beside the state. */
    fd: number;
  }[];
}

interface Held extends StoredFd {
  expiresAt: number;
  timer: NodeJS.Timeout;
}

interface Slot {
  /** In deposit order (a Map keeps insertion order; a replaced name moves last). */
  held: Map<string, Held>;
  expired: number;
  refused: number;
}

/** An imported snapshot may hold no more than every service's maximum. */
const MAX_IMPORTED_ENTRIES = 65_536;

/** Events: 'expired' (key, name): an fd nobody collected was closed. */
export class FdStore extends EventEmitter {
  private readonly slots = new Map<string, Slot>();
  private closedValue = false;

  get closed(): boolean {
    return this.closedValue;
  }

  /**
   * Keeps `fds[i]` under `entries[i].name` for `key`; a name already stored
   * is replaced (its old fd closed). All or nothing: on refusal every fd of
   * the deposit is closed and FdStoreError is thrown. The store owns the fds
   * from the call on, either way.
   */
  deposit(
    key: string,
    limits: FdStoreLimits,
    entries: readonly FdStoreEntry[],
    fds: readonly number[],
  ): void {
    const slot = this.slot(key);
    try {
      this.check(key, slot, limits, entries, fds);
    } catch (error) {
      slot.refused++;
      closeQuietly(fds);
      throw error;
    }
    const now = Date.now();
    for (const [i, entry] of entries.entries()) {
      this.hold(key, slot, {
        name: entry.name,
        fd: fds[i]!,
        metadata: entry.metadata,
        depositedAt: now,
        expiresAt: now + limits.fdStoreMaxAgeSecs * 1000,
      });
    }
  }

  /** True when `key` has fds waiting. */
  has(key: string): boolean {
    return (this.slots.get(key)?.held.size ?? 0) > 0;
  }

  /** Hands over (and forgets) every fd stored for `key`, in deposit order: the caller owns them. */
  collect(key: string): StoredFd[] {
    const slot = this.slots.get(key);
    if (!slot) return [];
    const out = [...slot.held.values()].map(({ name, fd, metadata, depositedAt, timer }) => {
      clearTimeout(timer);
      return { name, fd, metadata, depositedAt };
    });
    slot.held.clear();
    return out;
  }

  /** Per key with anything to report, sorted by key. */
  counts(): FdStoreCount[] {
    return [...this.slots.entries()]
      .filter(([, s]) => s.held.size > 0 || s.expired > 0 || s.refused > 0)
      .map(([key, s]) => ({ key, stored: s.held.size, expired: s.expired, refused: s.refused }))
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  /** Fds held now, over all keys. */
  get size(): number {
    let n = 0;
    for (const slot of this.slots.values()) n += slot.held.size;
    return n;
  }

  /**
   * A snapshot for a successor broker. The fds are lent, not handed over:
   * they stay this store's (send them; close() closes them here).
   */
  export(): { state: FdStoreState; fds: number[] } {
    const fds: number[] = [];
    const entries: FdStoreState['entries'] = [];
    for (const [key, slot] of this.slots) {
      for (const held of slot.held.values()) {
        entries.push({
          key,
          name: held.name,
          metadata: Buffer.from(held.metadata).toString('base64'),
          depositedAt: held.depositedAt,
          expiresAt: held.expiresAt,
          fd: fds.push(held.fd) - 1,
        });
      }
    }
    return { state: { version: 1, entries }, fds };
  }

  /**
   * Takes a predecessor's snapshot: the store owns `fds` from the call on,
   * keeps each entry until its original expiry, and closes the fds no
   * entry names. A state that does not read is refused whole (FdStoreError
   * BAD_STATE) with every fd closed.
   */
  import(state: unknown, fds: readonly number[]): void {
    let entries: FdStoreState['entries'];
    try {
      if (this.closedValue) throw new FdStoreError('FD_STORE_CLOSED', 'the fd store is closed');
      entries = readState(state, fds.length);
    } catch (error) {
      closeQuietly(fds);
      throw error;
    }
    const used = new Set<number>();
    for (const e of entries) {
      used.add(e.fd);
      this.hold(e.key, this.slot(e.key), {
        name: e.name,
        fd: fds[e.fd]!,
        metadata: new Uint8Array(Buffer.from(e.metadata, 'base64')),
        depositedAt: e.depositedAt,
        expiresAt: e.expiresAt,
      });
    }
    closeQuietly(fds.filter((_, i) => !used.has(i)));
  }

  /** Closes every fd held and refuses deposits from now on. */
  close(): void {
    this.closedValue = true;
    for (const slot of this.slots.values()) {
      for (const held of slot.held.values()) {
        clearTimeout(held.timer);
        closeQuietly([held.fd]);
      }
      slot.held.clear();
    }
  }

  private slot(key: string): Slot {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { held: new Map(), expired: 0, refused: 0 };
      this.slots.set(key, slot);
    }
    return slot;
  }

  private check(
    key: string,
    slot: Slot,
    limits: FdStoreLimits,
    entries: readonly FdStoreEntry[],
    fds: readonly number[],
  ): void {
    if (this.closedValue) throw new FdStoreError('FD_STORE_CLOSED', 'the fd store is closed');
    if (limits.fdStoreMax === 0)
      throw new FdStoreError('FD_STORE_DISABLED', `${key} has no fd store (fdStoreMax is 0)`);
    if (entries.length !== fds.length)
      throw new FdStoreError('FD_COUNT_MISMATCH', `${entries.length} names for ${fds.length} fds`);
    const fresh = entries.filter((e) => !slot.held.has(e.name)).length;
    if (slot.held.size + fresh > limits.fdStoreMax) {
      throw new FdStoreError(
        'FD_STORE_FULL',
        `${key} would hold ${slot.held.size + fresh} fds, over its fdStoreMax of ${limits.fdStoreMax}`,
      );
    }
  }

  private hold(key: string, slot: Slot, entry: Omit<Held, 'timer'>): void {
    const old = slot.held.get(entry.name);
    if (old) {
      clearTimeout(old.timer);
      slot.held.delete(entry.name);
      if (old.fd !== entry.fd) closeQuietly([old.fd]);
    }
    const timer = setTimeout(
      () => {
        if (slot.held.get(entry.name)?.timer !== timer) return;
        slot.held.delete(entry.name);
        slot.expired++;
        closeQuietly([entry.fd]);
        this.emit('expired', key, entry.name);
      },
      Math.max(0, entry.expiresAt - Date.now()),
    );
    timer.unref();
    slot.held.set(entry.name, { ...entry, timer });
  }
}

/** The entries of an export()ed state, checked field by field (it crossed a process boundary). */
function readState(state: unknown, fdCount: number): FdStoreState['entries'] {
  const bad = (why: string) => new FdStoreError('BAD_STATE', `fd store state: ${why}`);
  if (typeof state !== 'object' || state === null) throw bad('not an object');
  const { version, entries } = state as Partial<FdStoreState>;
  if (version !== 1) throw bad(`unknown version ${String(version)}`);
  if (!Array.isArray(entries) || entries.length > MAX_IMPORTED_ENTRIES) throw bad('no entry list');
  const fdsUsed = new Set<number>();
  const names = new Set<string>();
  for (const e of entries as unknown[]) {
    if (typeof e !== 'object' || e === null) throw bad('an entry is not an object');
    const { key, name, metadata, depositedAt, expiresAt, fd } = e as Record<string, unknown>;
    if (typeof key !== 'string' || key.length === 0 || key.length > 512) throw bad('bad key');
    if (typeof name !== 'string' || !FD_STORE_NAME.test(name)) throw bad('bad name');
    if (
      typeof metadata !== 'string' ||
      metadata.length > ((MAX_FD_STORE_METADATA_BYTES + 2) / 3) * 4 + 4
    )
      throw bad(`bad metadata for ${name}`);
    if (!Number.isSafeInteger(depositedAt) || !Number.isSafeInteger(expiresAt))
      throw bad(`bad times for ${name}`);
    if (
      !Number.isInteger(fd) ||
      (fd as number) < 0 ||
      (fd as number) >= fdCount ||
      fdsUsed.has(fd as number)
    )
      throw bad(`bad fd index for ${name}`);
    const id = `${key}\0${name}`;
    if (names.has(id)) throw bad(`${name} twice for ${key}`);
    names.add(id);
    fdsUsed.add(fd as number);
  }
  return entries as FdStoreState['entries'];
}
