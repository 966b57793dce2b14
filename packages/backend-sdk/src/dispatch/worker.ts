// The worker side of the prefork dispatcher: serveDispatched(handler) takes
// the channel its master gave this process, adopts every connection the
// master sends as a net.Socket, hands it to the handler, and reports back —
// adoption before a single byte of the connection is read, completion when
// the socket closes — so the master always knows which connections it may
// still re-dispatch and how loaded each worker is. The reports and the
// adopt-after-report gate are worker-reports.ts, taking over the spawn-time
// channel worker-channel.ts; spawning, scheduling and the master's
// bookkeeping live in worker-pool.ts / scheduler.ts. A handler that throws
// or rejects loses only its own connection.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  closeFd,
  closeFds,
  type FdPassError,
  type FdSocket,
  type ReceivedMessage,
} from '@handoff/fdpass';
import { endAfterFlush } from '../end-after-flush.js';
import { SlotSet } from '../slot-set.js';
import { adoptSocket } from './adopt-socket.js';
import { DispatchError } from './errors.js';
import { type DispatchLogger, errorCode, stderrDispatchLogger } from './log.js';
import {
  type DispatchEndpoint,
  DropReason,
  decodeMasterMessage,
  dispatchRecordId,
  dispatchRecordListener,
  encodeReady,
  type MasterMessage,
  ReportKind,
  type WorkerHello,
} from './wire.js';
import { channelFromEnvironment } from './worker-channel.js';
import { type ReceivedBatch, WorkerReporter } from './worker-reports.js';

/** The longest delay setTimeout honours (2^31-1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** One connection handed to this worker. */
export interface DispatchedConnection {
  /** Unique within the dispatcher (48-bit), the same number the master logs. */
  readonly id: number;
  /** The connection; this worker owns it. Close or destroy it when done. */
  readonly socket: Socket;
  /**
   * Where it was accepted — with socket.remoteAddress/remotePort and
   * localAddress/localPort (read from the kernel only if asked), this is the
   * connection's socket-session metadata.
   */
  readonly endpoint: DispatchEndpoint;
}

/**
 * Takes one connection. A handler that throws, or returns a promise that
 * rejects, loses only that connection: what it wrote is flushed, then the
 * socket is closed (the client reads those bytes, then the end of the
 * stream), the worker emits 'connectionError' and logs it, and goes on
 * serving its other connections. An exception thrown later from the
 * handler's own socket listeners is not the worker's to catch.
 */
// (An async handler fits: a function returning a promise is assignable here.)
export type DispatchHandler = (connection: DispatchedConnection) => void;

export interface ServeDispatchedOptions {
  /**
   * The channel to the master. Default: the one the dispatcher passed this
   * process at spawn (fd named by HANDOFF_DISPATCH_FD).
   */
  channel?: FdSocket;
  /**
   * Exit the process once a stop request has drained every connection
   * (default: true with the spawn-time channel, false with `channel`).
   */
  exitOnDrain?: boolean;
  /** Passed to each net.Socket (default false). */
  allowHalfOpen?: boolean;
  /** How long to wait for the master's hello (default 10,000 ms). */
  helloTimeoutMs?: number;
  log?: DispatchLogger;
}

export interface DispatchStopEvent {
  /** 'master': asked to stop (rotation or shutdown); 'channel': the master is gone; 'local': close(). */
  reason: 'master' | 'channel' | 'local';
  /** Connections still open are destroyed after this long. */
  deadlineMs: number;
}

/**
 * Events: 'stop' (DispatchStopEvent) when the worker stops taking
 * connections — close idle keep-alive connections then (e.g.
 * `httpServer.closeIdleConnections()`), 'drained' once every connection
 * has closed, 'connectionError' (error, connection) when the handler threw
 * or rejected on a connection: `error` is what it threw.
 */
export interface DispatchWorker extends EventEmitter {
  readonly role: 'worker';
  readonly slot: number;
  readonly generation: number;
  /** The master's listeners, by index. */
  readonly endpoints: readonly DispatchEndpoint[];
  /** Connections adopted and not yet closed. */
  readonly activeConnections: number;
  readonly stopping: boolean;
  /** Resolves once stopped and drained. */
  readonly drained: Promise<void>;
  /**
   * Stops taking connections (those the master sent but this worker has not
   * read are re-dispatched by the master when the channel closes), lets the
   * open ones finish for up to `deadlineMs`, then destroys the rest.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
}

/**
 * Serves the connections a dispatcher master sends this process. Resolves
 * once the master's hello arrived and this worker reported ready.
 */
export async function serveDispatched(
  handler: DispatchHandler,
  options: ServeDispatchedOptions = {},
): Promise<DispatchWorker> {
  if (typeof handler !== 'function') {
    throw new TypeError('Usage: serveDispatched(handler: (connection) => void, options?)');
  }
  const own = options.channel === undefined;
  const channel = options.channel ?? channelFromEnvironment();
  const worker = new DispatchWorkerImpl(channel, handler, {
    exitOnDrain: options.exitOnDrain ?? own,
    allowHalfOpen: options.allowHalfOpen ?? false,
    log: options.log ?? stderrDispatchLogger,
  });
  await worker.start(options.helloTimeoutMs ?? 10_000);
  return worker;
}

const REASON_OF: Record<string, DropReason> = {
  ERR_CONTROL_TRUNCATED: DropReason.CONTROL_TRUNCATED,
  ERR_TOO_MANY_FDS: DropReason.TOO_MANY_FDS,
  ERR_DATA_TRUNCATED: DropReason.DATA_TRUNCATED,
};

class DispatchWorkerImpl extends EventEmitter implements DispatchWorker {
  readonly role = 'worker' as const;
  slot = -1;
  generation = -1;
  endpoints: readonly DispatchEndpoint[] = [];
  stopping = false;
  readonly drained: Promise<void>;

  readonly #channel: FdSocket;
  readonly #handler: DispatchHandler;
  readonly #exitOnDrain: boolean;
  readonly #allowHalfOpen: boolean;
  readonly #log: DispatchLogger;
  #active = 0;
  #hello: ((hello: WorkerHello) => void) | null = null;
  readonly #reports: WorkerReporter;
  /** Open connections, so the deadline can destroy them (a SlotSet: see slot-set.ts for why not a Set). */
  readonly #open = new SlotSet<Socket>();
  #deadline: NodeJS.Timeout | null = null;
  #resolveDrained!: () => void;
  #isDrained = false;
  #drainDeadlineMs = 10_000;

  constructor(
    channel: FdSocket,
    handler: DispatchHandler,
    opts: { exitOnDrain: boolean; allowHalfOpen: boolean; log: DispatchLogger },
  ) {
    super();
    this.#channel = channel;
    this.#handler = handler;
    this.#exitOnDrain = opts.exitOnDrain;
    this.#allowHalfOpen = opts.allowHalfOpen;
    this.#log = opts.log;
    this.#reports = new WorkerReporter(channel, opts.log, {
      adopt: (batches) => this.#adoptAll(batches),
      maybeDrained: () => this.#maybeDrained(),
    });
    this.drained = new Promise<void>((resolve) => {
      this.#resolveDrained = resolve;
    });
  }

  get activeConnections(): number {
    return this.#active;
  }

  async start(helloTimeoutMs: number): Promise<void> {
    const channel = this.#channel;
    const hello = new Promise<WorkerHello>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new DispatchError('START_TIMEOUT', `no hello from the master in ${helloTimeoutMs} ms`),
        );
      }, helloTimeoutMs);
      this.#hello = (h) => {
        clearTimeout(timer);
        resolve(h);
      };
      channel.once('close', () => {
        clearTimeout(timer);
        reject(
          new DispatchError('CHANNEL_CLOSED', 'the master closed the channel before its hello'),
        );
      });
    });
    channel.on('message', (m: ReceivedMessage) => this.#onMessage(m));
    channel.on('error', (err: FdPassError) => this.#onChannelError(err));
    channel.on('drain', () => this.#reports.onDrain());
    channel.on('close', () => this.#onChannelClose());
    let h: WorkerHello;
    try {
      h = await hello;
    } catch (err) {
      channel.close();
      throw err;
    }
    this.slot = h.slot;
    this.generation = h.generation;
    this.endpoints = h.endpoints;
    this.#drainDeadlineMs = h.drainDeadlineMs;
    try {
      channel.write(encodeReady(process.pid));
    } catch (err) {
      channel.close();
      throw DispatchError.from('CHANNEL_CLOSED', 'cannot report ready to the master', err);
    }
  }

  close(options: { deadlineMs?: number } = {}): Promise<void> {
    if (!this.stopping) {
      // Unread dispatches stay in the channel; the master takes them back
      // when it sees the channel close.
      this.#channel.pause();
      this.#stop('local', options.deadlineMs ?? 10_000);
    }
    return this.drained;
  }

  // --- receiving ---------------------------------------------------------

  #onMessage({ data, fds }: ReceivedMessage): void {
    if (this.#isDrained) {
      if (fds.length > 0) closeFds(fds);
      return;
    }
    let msg: MasterMessage;
    try {
      msg = decodeMasterMessage(data, fds.length);
    } catch (err) {
      this.#onUndecodable(err, fds);
      return;
    }
    switch (msg.type) {
      case 'dispatch':
        this.#onDispatch(msg.data, fds);
        return;
      case 'hello':
        this.#onHello(msg.hello);
        return;
      case 'stop':
        this.#stop('master', msg.deadlineMs);
        return;
    }
  }

  #onUndecodable(err: unknown, fds: number[]): void {
    if (fds.length > 0) {
      // Only dispatches carry fds: this one is in the master's books, and
      // the master still holds its own copies, so it can send them again.
      closeFds(fds);
      this.#log('error', `dispatch from the master did not decode (${errorCode(err)}): dropped`, {
        error: (err as Error).message,
      });
      this.#reports.entry(ReportKind.DROPPED, DropReason.MALFORMED);
      return;
    }
    this.#log('error', `message from the master did not decode (${errorCode(err)}); stopping`, {
      error: (err as Error).message,
    });
    this.#channel.close();
  }

  #onDispatch(data: Uint8Array, fds: number[]): void {
    if (this.#hello !== null) {
      // A dispatch before the hello: the master would never do this.
      closeFds(fds);
      this.#reports.entry(ReportKind.DROPPED, DropReason.MALFORMED);
      return;
    }
    this.#reports.received({ data, fds });
  }

  #onHello(hello: WorkerHello): void {
    const resolve = this.#hello;
    this.#hello = null;
    if (resolve) resolve(hello);
    else this.#log('warn', 'a second hello from the master was ignored');
  }

  /** Message-level receive faults: the message (a dispatch: only they carry fds) was dropped. */
  #onChannelError(err: FdPassError): void {
    const reason = REASON_OF[err.code];
    if (reason !== undefined) {
      this.#log('warn', `a dispatch from the master was dropped by the kernel (${err.code})`);
      this.#reports.entry(ReportKind.DROPPED, reason);
      return;
    }
    this.#log('error', `channel to the master failed (${err.code})`);
  }

  #onChannelClose(): void {
    this.#reports.dropAll();
    if (!this.stopping) this.#stop('channel', this.#drainDeadlineMs);
    else this.#maybeDrained();
  }

  // --- adopting and serving ---------------------------------------------

  #adoptAll(batches: ReceivedBatch[]): void {
    for (const b of batches) this.#adopt(b);
  }

  #adopt({ data, fds }: ReceivedBatch): void {
    const endpoints = this.endpoints;
    for (let i = 0; i < fds.length; i++) {
      const fd = fds[i] as number;
      const endpoint = endpoints[dispatchRecordListener(data, i)];
      let socket: Socket;
      try {
        if (endpoint === undefined) {
          throw new DispatchError(
            'PROTOCOL',
            `listener ${dispatchRecordListener(data, i)} unknown`,
          );
        }
        socket = adoptSocket(
          fd,
          endpoint.transport,
          this.#allowHalfOpen,
          endpoint.transport === 'tcp' && endpoint.noDelay,
        );
      } catch (err) {
        try {
          closeFd(fd);
        } catch {
          // Already gone: nothing to release.
        }
        this.#reports.failed();
        this.#log(
          'error',
          `could not adopt connection ${dispatchRecordId(data, i)} (${errorCode(err)})`,
        );
        continue;
      }
      this.#active++;
      const slot = this.#open.add(socket);
      // 'close' comes once; on() spares the once() wrapper per connection.
      socket.on('close', () => this.#onSocketClose(slot, socket));
      const connection: DispatchedConnection = { id: dispatchRecordId(data, i), socket, endpoint };
      let result: unknown;
      try {
        result = this.#handler(connection);
      } catch (err) {
        this.#handlerFailed(connection, err);
        continue;
      }
      if (typeof (result as PromiseLike<void> | undefined)?.then === 'function') {
        // Promise.resolve: a foreign thenable's then() may itself throw.
        Promise.resolve(result).catch((err: unknown) => this.#handlerFailed(connection, err));
      }
    }
  }

  /**
   * One connection's handler failed: its state is unknown, so it is closed
   * once what was written to it is flushed (not waiting for the client to
   * close its side, which it may never do); nothing else is touched.
   */
  #handlerFailed(connection: DispatchedConnection, err: unknown): void {
    endAfterFlush(connection.socket);
    this.#log('error', `handler failed on connection ${connection.id} (${errorCode(err)})`, {
      error: err instanceof Error ? err.message : String(err),
    });
    this.emit('connectionError', err, connection);
  }

  #onSocketClose(slot: number, socket: Socket): void {
    this.#open.delete(slot, socket);
    this.#active--;
    this.#reports.closed(this.stopping);
    this.#maybeDrained();
  }

  // --- stopping ----------------------------------------------------------

  #stop(reason: DispatchStopEvent['reason'], deadlineMs: number): void {
    if (this.stopping) return;
    this.stopping = true;
    this.#deadline = setTimeout(
      () => {
        for (const s of this.#open) s.destroy();
        // setTimeout fires at once for anything over 2^31-1 ms (with only a
        // warning): a long drain deadline must mean long, not "now".
      },
      Math.min(deadlineMs, MAX_TIMER_MS),
    );
    this.#deadline.unref();
    this.emit('stop', { reason, deadlineMs } satisfies DispatchStopEvent);
    this.#maybeDrained();
  }

  #maybeDrained(): void {
    if (!this.stopping || this.#isDrained) return;
    if (this.#active > 0 || this.#reports.holding) return;
    this.#isDrained = true;
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#reports.flush();
    const channel = this.#channel;
    const done = () => {
      this.emit('drained');
      this.#resolveDrained();
      if (this.#exitOnDrain) setImmediate(() => process.exit(0));
    };
    if (channel.closed) {
      done();
      return;
    }
    channel.once('close', done);
    channel.end();
    // The master answers our end with its own; if it is gone or wedged,
    // do not wait for it.
    setTimeout(() => channel.close(), 1000).unref();
  }
}
