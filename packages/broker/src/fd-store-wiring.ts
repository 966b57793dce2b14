import { CHANNEL_CAP_FD_STORE } from '@handoff/protocol';
import type { Backend, BackendRegistry } from './backend-registry.js';
import { closeQuietly } from './close-quietly.js';
import { FdStore, type FdStoreCount } from './fd-store.js';
import type { FdStoreEntry, FdStoreError } from './fd-store-wire.js';
import type { BackendChannel } from './handoff/control-channel.js';

type Log = (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;

export interface FdStoreWiring {
  readonly store: FdStore;
  /** Listens for deposits on a new control channel (before it is attached). */
  track(channel: BackendChannel): void;
  counts(): FdStoreCount[];
  /** Closes every stored fd (the broker is closing, its daemons stopped). */
  close(): void;
}

/** Deposits a channel may make before its backend is known (attach takes a probe). */
const MAX_EARLY_DEPOSITS = 16;

export function wireFdStore(registry: BackendRegistry, log: Log): FdStoreWiring {
  const store = new FdStore();
  const tracked = new WeakSet<BackendChannel>();
  /** Each channel's backend, kept after the backend left the registry (its last deposit). */
  const owners = new WeakMap<BackendChannel, Backend>();
  const early = new Map<BackendChannel, { entries: FdStoreEntry[]; fds: number[] }[]>();

  store.on('expired', (key: string, name: string) =>
    log('warn', { service: key, fd_name: name }, 'stored fd expired uncollected; closed'),
  );

  const keepsFds = (channel: BackendChannel) =>
    ((channel.registration?.channelCapabilities ?? 0n) & CHANNEL_CAP_FD_STORE) !== 0n;

  const give = (backend: Backend, channel: BackendChannel) => {
    if (channel.closed || !keepsFds(channel) || !store.has(backend.key)) return;
    const stored = store.collect(backend.key);
    const fds = stored.map((s) => s.fd);
    const sent = channel.deliver(stored, fds);
    if (!sent) {
      // Kept for the next one to attach (the deposit closes them if it cannot).
      try {
        store.deposit(backend.key, backend.definition, stored, fds);
      } catch {
        // Refused: the store closed them.
      }
      return;
    }
    closeQuietly(stored.map(({ fd }) => fd));
    log(
      'info',
      { service: backend.key, daemon_pid: backend.pid, fds: stored.length },
      'stored fds delivered',
    );
  };

  const keep = (
    backend: Backend,
    channel: BackendChannel,
    entries: FdStoreEntry[],
    fds: number[],
  ) => {
    try {
      store.deposit(backend.key, backend.definition, entries, fds);
    } catch (error) {
      log(
        'warn',
        { service: backend.key, code: (error as FdStoreError).code },
        (error as Error).message,
      );
      return;
    }
    // A replacement already serving takes them now: it will not attach again.
    const next = registry
      .list()
      .filter((b) => b.key === backend.key && b.channel !== null && b.channel !== channel)
      .filter((b) => b.state !== 'stopping')
      .sort((a, b) => b.startedAt - a.startedAt)[0];
    if (next?.channel) give(next, next.channel);
  };

  const track = (channel: BackendChannel) => {
    if (tracked.has(channel)) return;
    tracked.add(channel);
    channel.on('deposit', (entries: FdStoreEntry[], fds: number[]) => {
      const backend = owners.get(channel) ?? registry.list().find((b) => b.channel === channel);
      if (backend) return keep(backend, channel, entries, fds);
      const waiting = early.get(channel) ?? [];
      if (waiting.length >= MAX_EARLY_DEPOSITS || store.closed) return closeQuietly(fds);
      waiting.push({ entries, fds });
      early.set(channel, waiting);
    });
    channel.on('deposit-refused', (error: FdStoreError) =>
      log(
        'warn',
        { daemon_pid: channel.peer.pid, code: error.code },
        `fd store deposit refused: ${error.message}`,
      ),
    );
    channel.once('close', () => {
      for (const d of early.get(channel) ?? []) closeQuietly(d.fds);
      early.delete(channel);
    });
  };

  registry.on('attached', (backend: Backend, channel: BackendChannel) => {
    track(channel);
    owners.set(channel, backend);
    // What an earlier daemon left first: deposits this one made before its
    // attach finished are its own, not to be handed back to it.
    give(backend, channel);
    const waiting = early.get(channel);
    early.delete(channel);
    for (const d of waiting ?? []) keep(backend, channel, d.entries, d.fds);
  });

  return {
    store,
    track,
    counts: () => store.counts(),
    close: () => {
      for (const list of early.values()) for (const d of list) closeQuietly(d.fds);
      early.clear();
      store.close();
    },
  };
}
