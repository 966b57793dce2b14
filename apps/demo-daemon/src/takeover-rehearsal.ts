// One rehearsal, at boot, of what a daemon runs when a rolling restart
// promotes it: taking a predecessor's deposit (the store's snapshot in a
// memfd, a line connection, the cut-over pair), the live cut-over from both
// sides, and the line wire on the adopted connection. In a fresh process
// every one of those functions runs for the first time on the live
// sessions it takes over, on a machine busy with the switch, and V8
// compiles each one then: measured as the replacement's event loop busy
// for 15–29 ms at a stretch in its first 70 ms, and connects routed to it
// waiting behind that (lifecycle.daemon_restart in tools/bench). The
// rehearsal plays both daemons in this process, on socketpairs and scratch
// stores, through the same functions a real takeover uses
// (depositForSuccessor's cut-over, adoptFromPredecessor, LineConnection);
// the daemon's own store, counters and connections never see it. It also
// warms the predecessor's side, which this daemon runs when it is replaced.
import {
  closeFd,
  FdSocket,
  memfdCreate,
  type ReceivedMessage,
  socketFromFd,
} from '@handoff/backend-sdk';
import pino from 'pino';
import { adoptFromPredecessor, KV_STATE_FD_NAME, writeAll } from './fd-handover.js';
import { type KvCommand, KvService } from './kv-service.js';
import { encodeKvSnapshot } from './kv-snapshot.js';
import { KvStore } from './kv-store.js';
import { LineConnection } from './line-connection.js';
import { CUTOVER_FD_NAME, cutOver } from './line-cutover.js';
import { formatCommandLine } from './line-protocol.js';

export interface TakeoverRehearsalOptions {
  maxLineBytes: number;
  maxQueuedAnswerBytes: number;
  /** The whole rehearsal gives up after this long (default 1000 ms). */
  timeoutMs?: number;
}

const LINE_NAME = 'line:rehearsal';
const encoder = new TextEncoder();
/** The commands a line session sends, a few rounds of each, on either side of the cut-over. */
const ROUND = [
  formatCommandLine({
    op: 'set',
    key: encoder.encode('rehearsal'),
    value: encoder.encode('1'),
    ttlMs: 0,
  }),
  formatCommandLine({ op: 'get', key: encoder.encode('rehearsal'), waitMs: 0 }),
  formatCommandLine({ op: 'get', key: encoder.encode('absent'), waitMs: 0 }),
  formatCommandLine({ op: 'delete', key: encoder.encode('rehearsal') }),
  formatCommandLine({ op: 'stats' }),
];
const ROUNDS = 4;

/**
 * Rehearses a takeover as described above; resolves true once the adopted
 * connection answered after the cut-over, false if anything failed or took
 * over `timeoutMs`. Never throws, and leaves no fd, socket or timer behind.
 */
export async function rehearseTakeover(options: TakeoverRehearsalOptions): Promise<boolean> {
  const log = pino({ level: 'silent' });
  const timeoutMs = options.timeoutMs ?? 1000;
  const lineOptions = (store: KvStore) => {
    const service = new KvService(store, { connections: () => 0, handoffs: () => 0 });
    return {
      maxLineBytes: options.maxLineBytes,
      maxQueuedAnswerBytes: options.maxQueuedAnswerBytes,
      execute: (command: KvCommand) => service.executeNow(command),
    };
  };
  /** Closed at the end, whatever happened. */
  const owned: FdSocket[] = [];
  /** Received fds not yet handed to their owner (a LineConnection, adoptFromPredecessor). */
  let loose: number[] = [];
  const lines: LineConnection[] = [];
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const work = async (): Promise<boolean> => {
    const [client, served] = FdSocket.pair('stream');
    owned.push(client, served);
    const [predecessorEnd, successorEnd] = FdSocket.pair('seqpacket');
    owned.push(predecessorEnd, successorEnd);
    const [courierIn, courierOut] = FdSocket.pair('seqpacket');
    owned.push(courierIn, courierOut);
    const before = new KvStore();
    before.set(encoder.encode('kept'), encoder.encode('across the restart'));
    const state = memfdCreate(KV_STATE_FD_NAME);
    try {
      writeAll(state, encodeKvSnapshot(before));
      // Two copies of the session's fd (one the predecessor serves, one in
      // its deposit), the successor's end of the pair and the snapshot, as
      // a broker's delivery brings them: fresh fds of their own.
      const delivered = new Promise<number[]>((resolve) =>
        courierOut.once('message', ({ fds }: ReceivedMessage) => resolve(fds)),
      );
      courierIn.write(Buffer.of(0), [served.fd, served.fd, successorEnd.fd, state]);
      const fds = await delivered;
      // Past the deadline, the finally below has run: these are still ours.
      if (finished || fds.length !== 4) {
        for (const fd of fds) closeFd(fd);
        return false;
      }
      loose = fds;
    } finally {
      closeFd(state);
    }
    const [predecessorFd, depositedFd, cutoverFd, stateFd] = loose as [
      number,
      number,
      number,
      number,
    ];

    // The predecessor serves the session for a few rounds.
    const answers = answerCounter(client);
    loose = [depositedFd, cutoverFd, stateFd];
    const predecessorLine = new LineConnection(
      socketFromFd(predecessorFd),
      new Uint8Array(0),
      lineOptions(before),
    );
    lines.push(predecessorLine);
    await exchange(client, answers);
    if (finished) return false;

    // The cut-over, both sides at once; then the successor serves the session.
    let adopted!: () => void;
    const adoptedLine = new Promise<void>((resolve) => {
      adopted = resolve;
    });
    const cutover = cutOver(predecessorEnd, new Map([[LINE_NAME, predecessorLine]]), {
      waitMs: timeoutMs,
      flushMs: timeoutMs,
      log,
    });
    loose = [];
    adoptFromPredecessor(
      [
        { name: KV_STATE_FD_NAME, fd: stateFd, metadata: new Uint8Array(0) },
        { name: CUTOVER_FD_NAME, fd: cutoverFd, metadata: new Uint8Array(0) },
        { name: LINE_NAME, fd: depositedFd, metadata: new Uint8Array(0) },
      ],
      new KvStore(),
      (socket, rest) => {
        if (finished) {
          socket.destroy();
          return;
        }
        lines.push(new LineConnection(socket, rest, lineOptions(new KvStore())));
        adopted();
      },
      log,
    );
    const result = await cutover;
    if (finished || result.handed !== 1) return false;
    await adoptedLine;
    if (finished) return false;
    await exchange(client, answers);
    return !finished;
  };
  try {
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    return await Promise.race([work(), deadline]);
  } catch {
    return false;
  } finally {
    finished = true;
    clearTimeout(timer);
    for (const line of lines) line.destroy();
    for (const socket of owned) socket.close();
    for (const fd of loose) closeFd(fd);
  }
}

/** Counts the answer lines `client` receives; `next(n)` resolves once n more have come. */
function answerCounter(client: FdSocket) {
  let seen = 0;
  let waiting: { until: number; resolve: () => void } | null = null;
  client.on('message', ({ data }: ReceivedMessage) => {
    for (const byte of data) if (byte === 0x0a) seen++;
    if (waiting && seen >= waiting.until) {
      waiting.resolve();
      waiting = null;
    }
  });
  return {
    next(n: number): Promise<void> {
      const until = seen + n;
      return new Promise((resolve) => {
        if (seen >= until) resolve();
        else waiting = { until, resolve };
      });
    },
  };
}

/** Sends the rounds, one line at a time as a session does, each after the last one's answer. */
async function exchange(
  client: FdSocket,
  answers: ReturnType<typeof answerCounter>,
): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    for (const command of ROUND) {
      const answered = answers.next(1);
      client.write(command);
      await answered;
    }
  }
}
