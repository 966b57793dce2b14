// The successor's side of an upgrade: on the channel named by
// HANDOFF_UPGRADE_FD it says hello once its config is loaded, receives the
// old broker's state (listeners, backends, their control channels and
// output pipes) with every fd checked and owned from the moment it
// arrives, records the backends and binds their channels, says ready and
// starts accepting only at the old broker's commit.
import { FdServer, FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { ChannelRegistration, DaemonProcess } from '@handoff/protocol';
import type { BackendRegistry } from '../backend-registry.js';
import { closeQuietly } from '../close-quietly.js';
import type { ServiceDefinition } from '../config/definition.js';
import { adoptDaemonOutput } from '../daemon-spawn.js';
import type { FdStoreState } from '../fd-store.js';
import { BackendChannel } from '../handoff/control-channel.js';
import type { LogNotice } from '../logs/log-file.js';
import { UpgradeError, UpgradeStateError } from './errors.js';
import { UPGRADE_FD_ENV } from './successor.js';
import {
  type BackendItem,
  encodeUpgradeMessage,
  MAX_STATE_PARTS,
  MAX_UPGRADE_MESSAGE_BYTES,
  parseUpgradeMessage,
  type UpgradeMessage,
} from './wire.js';

/** How long a successor waits for the state, and then for the commit. */
const TAKEOVER_WAIT_MS = 60_000;
/** How long binding the handed-over channels may take (each is a probe). */
const ATTACH_WAIT_MS = 3000;

export interface TakenListener {
  fd: number;
  path: string;
  owned: boolean;
}

export interface TakenBackend {
  item: BackendItem;
  identity: DaemonProcess;
  channel: { fd: number; registration: ChannelRegistration } | null;
  stdout: number | null;
  stderr: number | null;
}

/** The state as received. Every fd in it is the successor's until adopt() takes it. */
export interface TakenState {
  client: TakenListener;
  control: TakenListener;
  backends: TakenBackend[];
  /** The fd store, as FdStore.import() takes it. */
  fdStore: { state: FdStoreState; fds: number[] };
}

/** What adopt() needs of the successor broker around it. */
export interface TakeoverParts {
  registry: BackendRegistry;
  definitions: readonly ServiceDefinition[];
  /** The broker tracks an adopted channel like one that connected. */
  track(channel: BackendChannel): void;
  /** FdStore.import: owns the fds from the call on. */
  importFdStore(state: FdStoreState, fds: number[]): void;
  stateDir?: string | undefined;
  logNotice?: LogNotice | undefined;
  log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void;
}

/** The successor's end of the upgrade channel (serve builds it from HANDOFF_UPGRADE_FD). */
export class UpgradeTakeover {
  private readonly socket: FdSocket;
  private readonly queue: { message: UpgradeMessage; fds: number[] }[] = [];
  private failure: UpgradeError | null = null;
  private wake: (() => void) | null = null;
  private committed = false;

  /**
   * The upgrade channel this process was started with, or null when it was
   * started normally. The variable is removed at once: nothing we spawn may
   * inherit it.
   */
  static fromEnv(env: NodeJS.ProcessEnv): UpgradeTakeover | null {
    const raw = env[UPGRADE_FD_ENV];
    if (raw === undefined) return null;
    delete env[UPGRADE_FD_ENV];
    if (!/^[0-9]{1,9}$/.test(raw))
      throw new UpgradeError(
        'TAKEOVER_FAILED',
        `${UPGRADE_FD_ENV}=${JSON.stringify(raw)} is not an fd`,
      );
    try {
      return new UpgradeTakeover(
        FdSocket.adopt(Number(raw), { maxMessageSize: MAX_UPGRADE_MESSAGE_BYTES }),
      );
    } catch (error) {
      throw new UpgradeError(
        'TAKEOVER_FAILED',
        `${UPGRADE_FD_ENV}=${raw} is not an upgrade channel: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  private constructor(socket: FdSocket) {
    this.socket = socket;
    socket.on('message', ({ data, fds }: ReceivedMessage) => {
      const owned = [...fds];
      try {
        this.queue.push({ message: parseUpgradeMessage(data, owned.length), fds: owned });
      } catch (error) {
        closeQuietly(owned);
        this.fail(`the old broker sent garbage: ${(error as UpgradeStateError).message}`);
        return;
      }
      this.wake?.();
    });
    const gone = () => this.fail('the old broker closed the upgrade channel');
    socket.once('end', gone);
    socket.once('close', gone);
    socket.on('error', () => undefined);
  }

  /** Says hello and collects the state; closes every fd received if it is not valid. */
  async receive(): Promise<TakenState> {
    this.send({ type: 'hello', pid: process.pid });
    const received: { message: Extract<UpgradeMessage, { type: 'state' }>; fds: number[] }[] = [];
    try {
      for (;;) {
        const next = await this.next();
        if (next.message.type !== 'state') {
          closeQuietly(next.fds);
          throw new UpgradeError('TAKEOVER_FAILED', `expected state, got ${next.message.type}`);
        }
        received.push({ message: next.message, fds: next.fds });
        if (next.message.last) break;
        if (received.length >= MAX_STATE_PARTS)
          throw new UpgradeError('TAKEOVER_FAILED', `more than ${MAX_STATE_PARTS} state parts`);
      }
      return assemble(received);
    } catch (error) {
      for (const part of received) closeQuietly(part.fds);
      throw error instanceof UpgradeStateError
        ? new UpgradeError('TAKEOVER_FAILED', `bad state: ${error.message}`, { cause: error })
        : error;
    }
  }

  /** Says ready and waits for the old broker's commit (it may still kill us instead). */
  async ready(): Promise<void> {
    this.send({ type: 'ready', pid: process.pid });
    const next = await this.next();
    closeQuietly(next.fds);
    if (next.message.type !== 'commit')
      throw new UpgradeError('TAKEOVER_FAILED', `expected commit, got ${next.message.type}`);
    this.committed = true;
    this.socket.close();
  }

  /** Tells the old broker why we cannot take over (best effort), and closes the channel. */
  fail(reason: string): void {
    if (this.failure === null) {
      this.failure = new UpgradeError('TAKEOVER_FAILED', reason);
      if (!this.committed && !this.socket.closed) {
        try {
          this.socket.write(
            encodeUpgradeMessage({ type: 'failed', reason: reason.slice(0, 4000) }),
          );
          this.socket.end();
        } catch {
          this.socket.close();
        }
      }
    }
    this.wake?.();
  }

  close(): void {
    this.socket.close();
    for (const entry of this.queue.splice(0)) closeQuietly(entry.fds);
  }

  private send(message: UpgradeMessage): void {
    if (this.failure !== null) throw this.failure;
    this.socket.write(encodeUpgradeMessage(message));
  }

  private async next(): Promise<{ message: UpgradeMessage; fds: number[] }> {
    const timer = setTimeout(
      () => this.fail(`no word from the old broker within ${TAKEOVER_WAIT_MS} ms`),
      TAKEOVER_WAIT_MS,
    );
    try {
      for (;;) {
        const entry = this.queue.shift();
        if (entry !== undefined) return entry;
        if (this.failure !== null) throw this.failure;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = null;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Pairs each fd with its item and checks the whole: one listener of each role, items after their backend. */
function assemble(
  parts: { message: Extract<UpgradeMessage, { type: 'state' }>; fds: number[] }[],
): TakenState {
  let client: TakenListener | null = null;
  let control: TakenListener | null = null;
  const backends = new Map<string, TakenBackend>();
  const owned: number[] = [];
  const fdStore: TakenState['fdStore'] = { state: { version: 1, entries: [] }, fds: [] };
  try {
    for (const { message, fds } of parts) {
      let next = 0;
      for (const item of message.items) {
        if (item.kind === 'backend') {
          if (backends.has(item.key))
            throw new UpgradeStateError('BAD_FIELD', `backend ${item.key} twice`);
          backends.set(item.key, {
            item,
            identity: decodeIdentity(item.identity),
            channel: null,
            stdout: null,
            stderr: null,
          });
          continue;
        }
        const fd = fds[next++] as number;
        owned.push(fd);
        if (item.kind === 'listener') {
          const listener = { fd, path: item.path, owned: item.owned };
          if (item.role === 'client' ? client !== null : control !== null)
            throw new UpgradeStateError('BAD_FIELD', `${item.role} listener twice`);
          if (item.role === 'client') client = listener;
          else control = listener;
          continue;
        }
        if (item.kind === 'stored') {
          fdStore.state.entries.push({
            key: item.backend,
            name: item.name,
            metadata: item.metadata,
            depositedAt: item.depositedAt,
            expiresAt: item.expiresAt,
            fd: fdStore.fds.push(fd) - 1,
          });
          continue;
        }
        const backend = backends.get(item.backend);
        if (backend === undefined)
          throw new UpgradeStateError(
            'BAD_FIELD',
            `${item.kind} for unknown backend ${item.backend}`,
          );
        if (item.kind === 'channel') {
          if (backend.channel !== null) throw new UpgradeStateError('BAD_FIELD', 'channel twice');
          backend.channel = { fd, registration: decodeRegistration(item.registration) };
        } else {
          if (backend[item.stream] !== null)
            throw new UpgradeStateError('BAD_FIELD', `${item.stream} twice`);
          backend[item.stream] = fd;
        }
      }
    }
    if (client === null || control === null)
      throw new UpgradeStateError('BAD_FIELD', 'a listener is missing');
    return { client, control, backends: [...backends.values()], fdStore };
  } catch (error) {
    closeQuietly(owned);
    throw error;
  }
}

/**
 * Records the handed-over backends and binds their channels (each verified
 * by a probe, as any attach is). A backend whose definition this config no
 * longer has is let go: its fds are closed, the daemon runs on unmanaged.
 * Takes every fd of `state` but the listeners.
 */
export async function adoptBackends(state: TakenState, parts: TakeoverParts): Promise<void> {
  try {
    parts.importFdStore(state.fdStore.state, state.fdStore.fds);
  } catch (error) {
    // Refused whole, its fds closed: the daemons lose what they stored, nothing more.
    parts.log('warn', { err: error }, 'upgrade: fd store not adopted');
  }
  const attaching: Promise<void>[] = [];
  for (const taken of state.backends) {
    const { item } = taken;
    const definition = parts.definitions.find(
      (d) => d.name === item.name && d.version === item.version,
    );
    const fds = [taken.channel?.fd, taken.stdout, taken.stderr].filter(
      (fd): fd is number => typeof fd === 'number',
    );
    if (definition === undefined || parts.registry.get(item.key) !== undefined) {
      closeQuietly(fds);
      parts.log(
        'warn',
        { service: item.key, daemon_pid: item.pid },
        'upgrade: backend not adopted (no such definition here)',
      );
      continue;
    }
    const backend = parts.registry.adoptRunning(definition, item.endpoint, taken.identity, {
      startedAt: item.startedAt,
      routed: item.routed,
    });
    if (taken.stdout !== null || taken.stderr !== null) {
      const pipes = { stdout: taken.stdout, stderr: taken.stderr };
      backend.output = adoptDaemonOutput(definition, item.pid, pipes, {
        stateDir: parts.stateDir,
        logNotice: parts.logNotice,
      });
    }
    if (taken.channel !== null) {
      let channel: BackendChannel;
      try {
        channel = new BackendChannel(FdSocket.adopt(taken.channel.fd), taken.channel.registration);
      } catch (error) {
        closeQuietly([taken.channel.fd]);
        parts.log(
          'warn',
          { service: item.key, err: error },
          'upgrade: control channel not adopted',
        );
        continue;
      }
      parts.track(channel);
      attaching.push(parts.registry.attachChannel(channel, taken.identity));
    }
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(attaching),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ATTACH_WAIT_MS);
    }),
  ]);
  clearTimeout(timer);
}

/**
 * A listener from the state as an FdServer, paused until the commit. Its
 * path must be the one this broker was started for (a successor started
 * with another --socket would serve somewhere nobody connects).
 */
export function listenerFromState(
  listener: TakenListener,
  expectedPath: string,
  options: Parameters<typeof FdServer.fromFd>[1],
): FdServer {
  if (listener.path !== expectedPath)
    throw new UpgradeError(
      'TAKEOVER_FAILED',
      `the old broker listens at ${listener.path}, this one was started for ${expectedPath}`,
    );
  const server = FdServer.fromFd(listener.fd, options);
  server.pause();
  return server;
}

function decodeIdentity(b64: string): DaemonProcess {
  try {
    return DaemonProcess.decode(Buffer.from(b64, 'base64'));
  } catch {
    throw new UpgradeStateError('BAD_FIELD', 'identity: not a DaemonProcess');
  }
}

function decodeRegistration(b64: string): ChannelRegistration {
  try {
    return ChannelRegistration.decode(Buffer.from(b64, 'base64'));
  } catch {
    throw new UpgradeStateError('BAD_FIELD', 'registration: not a ChannelRegistration');
  }
}
