// The old broker's side of an upgrade: start a successor, and once it has
// loaded its config, stop accepting (clients wait in the kernel backlog),
// let offers in flight and spawns finish, pause every control channel and
// send the listeners, the channels, the backends and their output pipes.
// On the successor's `ready` we commit and it starts accepting; on any
// failure it is killed and everything is resumed here. What the old broker
// does after a commit (stop accepting for good, drain, exit) is the server's.
import type { FdServer } from '@handoff/fdpass';
import { ChannelRegistration, DaemonProcess, ErrorCode } from '@handoff/protocol';
import { type Backend, type BackendRegistry, keyOf, RouteError } from '../backend-registry.js';
import type { ServiceDefinition } from '../config/definition.js';
import type { DaemonOutput } from '../daemon-spawn.js';
import type { FdStoreState } from '../fd-store.js';
import type { BackendChannel } from '../handoff/control-channel.js';
import { UpgradeError } from './errors.js';
import { defaultSuccessorCommand, type SuccessorCommand } from './successor.js';
import { SuccessorSession } from './successor-session.js';
import { carriesFd, type StateItem, stateParts } from './wire.js';

/** UPGRADE with ready_deadline_ms = 0 waits this long for the successor. */
export const DEFAULT_UPGRADE_READY_MS = 10_000;
/** How long a broker that handed over lets its Hellos in progress finish. */
export const RETIRE_DRAIN_MS = 5000;
/** How often the quiesce step looks again for offers in flight (no event says so). */
const QUIESCE_POLL_MS = 2;

export interface UpgradeResult {
  oldPid: number;
  newPid: number;
  /** From pausing accepts here to the successor's commit: how long new clients waited. */
  switchMs: number;
  /** From the request to the commit, successor start-up included. */
  totalMs: number;
}

/** What the handover needs of the broker around it. */
export interface HandoverParts {
  socketPath: string;
  controlPath: string;
  registry: BackendRegistry;
  clientServer(): FdServer | null;
  controlServer(): FdServer | null;
  /** The client socket file is a broker's (false: a service manager bound it and keeps it). */
  clientSocketOwned(): boolean;
  /** Every control channel open, bound to a backend or not. */
  channels(): Iterable<BackendChannel>;
  /** FdStore.export(): its fds stay the store's (closed with it once we exit). */
  fdStore(): { state: FdStoreState; fds: number[] };
  log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void;
}

/** What was taken from the running broker, to give back if the upgrade fails. */
interface Taken {
  pausedAt: number;
  servers: FdServer[];
  detached: { backend: Backend; channel: BackendChannel }[];
  outputs: DaemonOutput[];
}

export class Upgrader {
  private readonly parts: HandoverParts;
  private readonly successor: SuccessorCommand | undefined;
  private runningValue: Promise<UpgradeResult> | null = null;
  /** Settles true at a commit, false at a failure; set while an upgrade runs. */
  private outcome: Promise<boolean> | null = null;
  private committedValue = false;
  /** Acquires that may spawn, started before the handover closed the gate. */
  private spawning = 0;
  private session: SuccessorSession | null = null;

  constructor(parts: HandoverParts, successor?: SuccessorCommand) {
    this.parts = parts;
    this.successor = successor;
  }

  /** True while an upgrade runs. */
  get running(): boolean {
    return this.runningValue !== null;
  }

  /** True once a successor took over: this broker only finishes what it began. */
  get committed(): boolean {
    return this.committedValue;
  }

  /**
   * The router's acquire while upgrades may run: a ready backend as usual;
   * a spawn waits for a running upgrade's outcome (the state it sends must
   * hold every daemon), and after a commit nothing spawns here any more.
   */
  /** acquire()'s answer when it is a ready backend, without waiting; else null. */
  acquireNow(definition: ServiceDefinition): Backend | null {
    const { registry } = this.parts;
    if (!this.committedValue) return registry.readyNow(definition);
    const backend = registry.get(keyOf(definition));
    return backend?.state === 'ready' ? backend : null;
  }

  acquire(definition: ServiceDefinition): Promise<Backend> {
    const { registry } = this.parts;
    const key = keyOf(definition);
    if (this.committedValue) return handedOver(registry, key);
    if (registry.get(key)?.state === 'ready') return registry.acquire(definition);
    if (this.outcome !== null)
      return this.outcome.then((committed) =>
        committed ? handedOver(registry, key) : this.acquire(definition),
      );
    this.spawning++;
    return registry.acquire(definition).finally(() => this.spawning--);
  }

  /**
   * Calls off a running upgrade (the broker is closing): the successor is
   * killed and everything given back, unless it already committed.
   * Resolves with the result if it did, else null.
   */
  abort(): Promise<UpgradeResult | null> {
    const running = this.runningValue;
    if (running === null) return Promise.resolve(null);
    this.session?.abort(new UpgradeError('NOT_SERVING', 'the broker is closing'));
    return running.catch(() => null);
  }

  /** Starts an upgrade, or joins the one running. Rejects with UpgradeError; the broker keeps serving then. */
  upgrade(readyDeadlineMs = DEFAULT_UPGRADE_READY_MS): Promise<UpgradeResult> {
    if (this.runningValue !== null) return this.runningValue;
    if (this.committedValue)
      return Promise.reject(new UpgradeError('NOT_SERVING', 'this broker already handed over'));
    let settle!: (committed: boolean) => void;
    this.outcome = new Promise((resolve) => {
      settle = resolve;
    });
    const running = this.run(readyDeadlineMs).then(
      (result) => {
        settle(true);
        return result;
      },
      (error: unknown) => {
        settle(false);
        throw error;
      },
    );
    this.runningValue = running;
    const done = () => {
      this.runningValue = null;
      this.outcome = null;
    };
    running.then(done, done);
    return running;
  }

  private async run(deadlineMs: number): Promise<UpgradeResult> {
    const started = performance.now();
    const successor = new SuccessorSession(this.successor ?? defaultSuccessorCommand(), deadlineMs);
    this.session = successor;
    try {
      const hello = await successor.expect('hello');
      this.parts.log('info', { successor: hello.pid }, 'upgrade: successor loaded, handing over');
      const taken = this.take();
      try {
        await this.quiesce(successor);
        this.takeRest(taken);
        for (const { channel } of taken.detached) channel.pause();
        this.sendState(successor, taken);
        const ready = await successor.expect('ready');
        // Only now does this broker stop accepting: the successor resumes
        // on the commit, so clients wait in the backlog for one message.
        this.pauseServer(taken, this.parts.clientServer());
        taken.pausedAt = performance.now();
        successor.send({ type: 'commit' });
        this.committedValue = true;
        const now = performance.now();
        successor.release();
        // The successor owns the pipes now (it read them from the same fds).
        for (const output of taken.outputs) output.close();
        return {
          oldPid: process.pid,
          newPid: ready.pid,
          switchMs: now - taken.pausedAt,
          totalMs: now - started,
        };
      } catch (error) {
        this.giveBack(taken);
        throw error;
      }
    } catch (error) {
      await successor.kill();
      throw error;
    } finally {
      this.session = null;
    }
  }

  /**
   * Takes the channels off their backends (no new offer starts: Hellos
   * take the reconnect route until the commit). Clients are still
   * accepted, and the control socket too: a daemon spawned just before
   * must attach for the quiesce to end.
   */
  private take(): Taken {
    const taken: Taken = { pausedAt: Number.NaN, servers: [], detached: [], outputs: [] };
    this.detachChannels(taken);
    return taken;
  }

  /** After the quiesce: no more attaches either, and the channels bound meanwhile come off too. */
  private takeRest(taken: Taken): void {
    this.pauseServer(taken, this.parts.controlServer());
    this.detachChannels(taken);
  }

  private pauseServer(taken: Taken, server: FdServer | null): void {
    if (server === null || server.closed) return;
    server.pause();
    taken.servers.push(server);
  }

  private detachChannels(taken: Taken): void {
    for (const backend of this.parts.registry.list()) {
      if (backend.channel === null || backend.channel.closed) continue;
      taken.detached.push({ backend, channel: backend.channel });
      // Not channelLost: the backend is fine, Hellos take the reconnect route meanwhile.
      backend.channel = null;
    }
  }

  /**
   * Waits until no offer is in flight, no backend is starting and no
   * rolling restart is between its replacement's start and its promotion.
   * A backend stopping (idle, or drained after a restart) is not waited
   * for: it is not handed over, and this broker sees it out (retire).
   */
  private async quiesce(successor: SuccessorSession): Promise<void> {
    const { registry } = this.parts;
    const busy = () =>
      this.spawning > 0 ||
      registry
        .list()
        .some(
          (b) => b.state === 'starting' || (b.state === 'ready' && registry.get(b.key) !== b),
        ) ||
      [...this.parts.channels()].some((c) => !c.closed && c.inFlight > 0);
    while (busy()) {
      successor.check();
      await new Promise((resolve) => setTimeout(resolve, QUIESCE_POLL_MS));
    }
    successor.check();
  }

  private sendState(successor: SuccessorSession, taken: Taken): void {
    const items: StateItem[] = [];
    const fds: number[] = [];
    const add = (item: StateItem, fd?: number) => {
      items.push(item);
      if (fd !== undefined) fds.push(fd);
    };
    const client = this.parts.clientServer();
    const control = this.parts.controlServer();
    if (client === null || control === null)
      throw new UpgradeError('NOT_SERVING', 'the broker is not listening');
    const socketPath = this.parts.socketPath;
    add(
      { kind: 'listener', role: 'client', path: socketPath, owned: this.parts.clientSocketOwned() },
      client.fd,
    );
    add(
      { kind: 'listener', role: 'control', path: this.parts.controlPath, owned: true },
      control.fd,
    );
    const bound = new Set<BackendChannel>();
    for (const backend of this.parts.registry.list()) {
      // Only the backends Hellos are routed to; one stopping stays this broker's to see out.
      if (backend.pid === null || backend.identity === null || backend.state !== 'ready') continue;
      if (this.parts.registry.get(backend.key) !== backend) continue;
      const key = backend.key;
      add({
        kind: 'backend',
        key,
        name: backend.definition.name,
        version: backend.definition.version,
        endpoint: backend.endpoint,
        pid: backend.pid,
        identity: base64(DaemonProcess.encode(backend.identity)),
        startedAt: backend.startedAt,
        routed: backend.routed,
      });
      const channel = taken.detached.find((d) => d.backend === backend)?.channel;
      if (channel && !channel.closed && channel.registration !== null) {
        bound.add(channel);
        add(
          {
            kind: 'channel',
            backend: key,
            registration: base64(ChannelRegistration.encode(channel.registration)),
          },
          channel.fd,
        );
      }
      const output = backend.output;
      if (output !== null) {
        taken.outputs.push(output);
        const pipes = output.detach();
        if (pipes.stdout !== null)
          add({ kind: 'output', backend: key, stream: 'stdout' }, pipes.stdout);
        if (pipes.stderr !== null)
          add({ kind: 'output', backend: key, stream: 'stderr' }, pipes.stderr);
      }
    }
    const store = this.parts.fdStore();
    for (const entry of store.state.entries) {
      const fd = store.fds[entry.fd];
      if (fd === undefined) continue;
      add(
        {
          kind: 'stored',
          backend: entry.key,
          name: entry.name,
          metadata: entry.metadata,
          depositedAt: entry.depositedAt,
          expiresAt: entry.expiresAt,
        },
        fd,
      );
    }
    // A channel bound to no backend (not registered yet, or probing): its
    // daemon attaches again, to the successor.
    for (const channel of this.parts.channels())
      if (!bound.has(channel)) channel.close('broker upgrading: attach again');
    const parts = stateParts(items);
    let next = 0;
    parts.forEach((part, i) => {
      const count = part.filter(carriesFd).length;
      successor.send(
        { type: 'state', last: i === parts.length - 1, items: part },
        fds.slice(next, next + count),
      );
      next += count;
    });
  }

  /** The upgrade failed: serve again as before. */
  private giveBack(taken: Taken): void {
    for (const output of taken.outputs) output.resume();
    for (const { backend, channel } of taken.detached) {
      if (channel.closed) continue;
      channel.resume();
      if (backend.channel === null && this.parts.registry.get(backend.key) === backend)
        backend.channel = channel;
    }
    for (const server of taken.servers) if (!server.closed) server.resume();
  }
}

/** The longest a broker that handed over waits for daemons it was stopping (SIGKILL comes first). */
const MAX_RETIRE_STOP_WAIT_MS = 120_000;

/**
 * After a commit: resolves once the daemons this broker was stopping (idle,
 * or drained after a rolling restart) are gone — their SIGKILL deadline is
 * this broker's to keep, not the successor's.
 */
export async function stillStopping(registry: BackendRegistry): Promise<void> {
  const until = performance.now() + MAX_RETIRE_STOP_WAIT_MS;
  while (registry.list().some((b) => b.state === 'stopping') && performance.now() < until)
    await new Promise((resolve) => setTimeout(resolve, 50));
}

/** After a commit: a ready backend is still routed (by reconnect), nothing is spawned. */
function handedOver(registry: BackendRegistry, key: string): Promise<Backend> {
  const backend = registry.get(key);
  if (backend?.state === 'ready') return Promise.resolve(backend);
  return Promise.reject(
    new RouteError(
      ErrorCode.SHUTTING_DOWN,
      'the broker handed over to its successor; connect again',
      0,
      {
        service: key,
      },
    ),
  );
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}
