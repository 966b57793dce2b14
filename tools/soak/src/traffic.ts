// The traffic kinds: one function per kind, each one task on its own
// connection(s), checking every answer it gets (values must round-trip
// byte for byte). A task counts the requests it saw answered in its Scope,
// and registers every socket there, so a deadline can tear it down.
// Choosing kinds and running them under deadlines is campaign.ts's;
// classifying errors is tally.ts's.
import { randomBytes, randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { probeDaemon } from '@handoff/backend-sdk';
import { adminRequest, connectService } from '@handoff/broker';
import {
  DemoKvClient,
  decodeResponse,
  encodeRequest,
  formatCommandLine,
  formatReplyLine,
  KV_PAYLOAD_PROTOCOL,
  type KvCommand,
  type KvReply,
} from '@handoff/demo-daemon';
import {
  AdminVerb,
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  type Frame,
  FrameKind,
  Hello,
  PROTOCOL_VERSION,
  requestFrame,
} from '@handoff/protocol';
import { rssKib } from './proc.js';
import type { SoakProcesses } from './processes.js';
import { FrameReader, LineReader } from './socket-reader.js';
import { AnswerMismatch, OutboundNotBounded, type TrafficKind } from './tally.js';

const SERVICE = 'demo-kv';
const VERSION = '1.0.0';
const KiB = 1024;
const MiB = 1024 * KiB;
/** The daemon's largest value (kv-store DEFAULT_MAX_VALUE_BYTES). */
const MAX_VALUE = MiB;
/** Generous: a respawn after a kill is a cold tsx start on a loaded machine. */
const CONNECT_TIMEOUT_MS = 15_000;

/** What every task shares: where the broker is, and random bytes to cut values from. */
export interface TrafficContext {
  processes: SoakProcesses;
  /** Random bytes; values are a unique 16-byte tag then a slice of this. */
  pool: Buffer;
  /** Largest daemon RSS growth (KiB) seen while a slow reader stalled. */
  stallGrowthKib: number;
  /** Stalls whose daemon RSS growth was judged (the 64 MiB ones with a warm daemon to measure). */
  stallsJudged: number;
  /** 64 MiB stalls not judged because their daemon was younger than WARM_DAEMON_MS. */
  stallsOnYoungDaemon: number;
  slowReaderRuns: number;
}

export function trafficContext(processes: SoakProcesses): TrafficContext {
  return {
    processes,
    pool: randomBytes(MAX_VALUE + MiB),
    stallGrowthKib: 0,
    stallsJudged: 0,
    stallsOnYoungDaemon: 0,
    slowReaderRuns: 0,
  };
}

/** One task's belongings: its answered-request count, its sockets, its abort. */
export class Scope {
  requests = 0;
  /** What the task is doing now, for the report when it hangs. */
  doing = 'connecting';
  private readonly sockets = new Set<Socket>();
  private readonly abort = new AbortController();
  readonly signal: AbortSignal = this.abort.signal;
  constructor(
    readonly loop: number,
    readonly seq: number,
  ) {}

  track<S extends Socket>(socket: S): S {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return socket;
  }

  /** Destroys every socket still open; awaits of the task then fail fast. */
  close(reason?: Error): void {
    if (reason) this.abort.abort(reason);
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  key(part: string | number = ''): string {
    return `soak-${this.loop}-${this.seq}-${part}`;
  }
}

export type Task = (ctx: TrafficContext, scope: Scope) => Promise<void>;

function value(
  ctx: TrafficContext,
  scope: Scope,
  size: number,
  part: string | number = '',
): Buffer {
  const tag = Buffer.alloc(16, 0x20);
  tag.write(`${scope.loop}.${scope.seq}.${part}`.slice(0, 16), 'latin1');
  if (size <= 16) return tag.subarray(0, size);
  const start = randomInt(0, ctx.pool.length - size + 16);
  return Buffer.concat([tag, ctx.pool.subarray(start, start + size - 16)]);
}

const pick = <T>(choices: readonly T[]): T => choices[randomInt(choices.length)]!;

function expectSame(what: string, got: Uint8Array | undefined, want: Uint8Array): void {
  if (got === undefined) throw new AnswerMismatch(`${what}: the value is missing (NOT_FOUND)`);
  if (Buffer.compare(asBuffer(got), want) !== 0) {
    throw new AnswerMismatch(
      `${what}: ${got.length} bytes came back for ${want.length} sent, not the same bytes`,
    );
  }
}

async function serviceSocket(ctx: TrafficContext, scope: Scope, initialData?: Uint8Array) {
  const connection = await connectService(SERVICE, {
    version: VERSION,
    brokerPath: ctx.processes.brokerSocket,
    timeoutMs: CONNECT_TIMEOUT_MS,
    signal: scope.signal,
    clientVersion: 'soak',
    ...(initialData ? { initialData } : {}),
  });
  scope.track(connection.socket);
  return connection;
}

const asBuffer = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

function kvFrame(command: KvCommand, requestId: bigint): Buffer {
  return asBuffer(
    encodeFramed(
      requestFrame({
        payloadProtocol: KV_PAYLOAD_PROTOCOL.id,
        payload: encodeRequest(command),
        requestId,
      }),
    ),
  );
}

function kvAnswer(frame: Frame, requestId: bigint): KvReply {
  if (frame.kind !== FrameKind.RESPONSE || frame.payloadProtocol !== KV_PAYLOAD_PROTOCOL.id) {
    throw new AnswerMismatch(
      `expected a 0xF0D0 RESPONSE, got kind ${frame.kind} on 0x${frame.payloadProtocol.toString(16)}`,
    );
  }
  if (frame.requestId !== requestId) {
    throw new AnswerMismatch(
      `expected the answer to request ${requestId}, got one to ${frame.requestId}`,
    );
  }
  return decodeResponse(frame.payload);
}

function expectResult(what: string, reply: KvReply, result: KvReply['result']): void {
  if (reply.result !== result) {
    const detail = reply.result === 'failure' ? ` ${reply.code}: ${reply.message}` : '';
    throw new AnswerMismatch(`${what}: expected ${result}, got ${reply.result}${detail}`);
  }
}

/** Handoff without a first request, then framed requests (some pipelined) over FrameClient. */
const handoff: Task = async (ctx, scope) => {
  const { socket, route } = await serviceSocket(ctx, scope);
  scope.doing = `framed requests (route ${route})`;
  const client = DemoKvClient.fromSocket(socket, route);
  try {
    const rounds = 1 + randomInt(4);
    for (let r = 0; r < rounds; r++) {
      const key = scope.key(r);
      const want = value(ctx, scope, pick([16, 100, 4 * KiB, 64 * KiB, 300 * KiB]), r);
      await client.set(key, want, { timeoutMs: 15_000 });
      scope.requests++;
      expectSame(`GET ${key}`, (await client.get(key, { timeoutMs: 15_000 }))?.value, want);
      scope.requests++;
      const many = await Promise.all(
        Array.from({ length: 8 }, () => client.get(key, { timeoutMs: 15_000 })),
      );
      for (const hit of many) expectSame(`pipelined GET ${key}`, hit?.value, want);
      scope.requests += many.length;
      if (!(await client.delete(key, { timeoutMs: 15_000 }))) {
        throw new AnswerMismatch(`DEL ${key}: nothing to delete right after a SET`);
      }
      scope.requests++;
    }
  } finally {
    client.close();
  }
};

/** Handoff with a framed SET as the first request (1 KiB to 1 MiB), then GET and DEL on the same socket. */
const handoffFirstRequest: Task = async (ctx, scope) => {
  const key = scope.key();
  const want = value(ctx, scope, pick([KiB, 100 * KiB, MAX_VALUE]));
  const first = kvFrame({ op: 'set', key: Buffer.from(key), value: want, ttlMs: 0 }, 1n);
  scope.doing = `connectService with a ${first.length}-byte first request (SET of ${want.length} B)`;
  const { socket, route } = await serviceSocket(ctx, scope, first);
  scope.doing = `waiting for the answer to a ${first.length}-byte first request (route ${route})`;
  const reader = new FrameReader(socket);
  socket.write(
    Buffer.concat([
      kvFrame({ op: 'get', key: Buffer.from(key), waitMs: 0 }, 2n),
      kvFrame({ op: 'delete', key: Buffer.from(key) }, 3n),
    ]),
  );
  expectResult(`first request SET ${want.length} B`, kvAnswer(await reader.next(), 1n), 'stored');
  scope.requests++;
  const hit = kvAnswer(await reader.next(), 2n);
  expectResult(`GET after a ${want.length}-byte first request`, hit, 'found');
  expectSame(
    `GET after a ${want.length}-byte first request`,
    hit.result === 'found' ? hit.value : undefined,
    want,
  );
  scope.requests++;
  expectResult('DEL', kvAnswer(await reader.next(), 3n), 'deleted');
  scope.requests++;
  socket.destroy();
};

const stripNewline = (line: Uint8Array) => Buffer.from(line.subarray(0, line.length - 1));

/** The line wire through the broker; every other task sends its SET as the first request. */
const lineWire: Task = async (ctx, scope) => {
  const key = Buffer.from(scope.key());
  const want = value(ctx, scope, pick([16, 100, 2 * KiB, 16 * KiB]));
  const set = formatCommandLine({ op: 'set', key, value: want, ttlMs: 0 });
  const asFirst = scope.seq % 2 === 0;
  scope.doing = `connectService${asFirst ? ` with a ${set.length}-byte first line` : ''}`;
  const { socket, route } = await serviceSocket(ctx, scope, asFirst ? set : undefined);
  scope.doing = `waiting for line answers (route ${route}, SET ${asFirst ? 'as first request' : 'after handoff'})`;
  const reader = new LineReader(socket);
  const rest = [
    formatCommandLine({ op: 'get', key, waitMs: 0 }),
    formatCommandLine({ op: 'delete', key }),
  ];
  socket.write(Buffer.concat(asFirst ? rest : [set, ...rest]));
  const expected = [
    Buffer.from('STORED'),
    stripNewline(formatReplyLine({ result: 'found', value: want, ttlRemainingMs: 0 })),
    Buffer.from('DELETED'),
  ];
  for (const [i, line] of expected.entries()) {
    const got = await reader.next();
    if (!got.equals(line)) {
      const shown = got.subarray(0, 80).toString('latin1');
      throw new AnswerMismatch(
        `line ${i + 1} (${asFirst ? 'SET as first request' : 'SET after handoff'}, ${want.length} B): got "${shown}" (${got.length} B), expected ${line.length} B starting "${line.subarray(0, 20).toString('latin1')}"`,
      );
    }
    scope.requests++;
  }
  socket.destroy();
};

/** An identity probe of the daemon the broker lists. */
const probe: Task = async (ctx, scope) => {
  const instance = await ctx.processes.daemon();
  scope.requests++;
  // None ready: just killed, and no Hello has respawned it yet.
  if (!instance) return;
  const verified = await probeDaemon(
    instance.endpoint,
    { pid: instance.pid },
    { timeoutMs: 5000, signal: scope.signal },
  );
  if (verified.identity.pid !== instance.pid || verified.peer.pid !== instance.pid) {
    throw new AnswerMismatch(
      `probe: pid ${verified.identity.pid} (peer ${verified.peer.pid}) answered for ${instance.pid}`,
    );
  }
  scope.requests++;
};

/** STATUS, METRICS and HEALTHZ on the broker's admin socket. */
const admin: Task = async (ctx, scope) => {
  const path = ctx.processes.brokerSocket;
  const options = { timeoutMs: 10_000, signal: scope.signal };
  const status = await adminRequest(path, { verb: AdminVerb.STATUS, json: true }, options);
  const s = JSON.parse(status.body) as { pid?: number; socket_path?: string };
  if (status.exitCode !== 0 || s.pid !== ctx.processes.brokerPid || s.socket_path !== path) {
    throw new AnswerMismatch(`STATUS: exit ${status.exitCode}, ${status.body.slice(0, 200)}`);
  }
  scope.requests++;
  const metrics = await adminRequest(path, { verb: AdminVerb.METRICS }, options);
  if (metrics.exitCode !== 0 || !metrics.body.endsWith('# EOF\n')) {
    throw new AnswerMismatch(
      `METRICS: exit ${metrics.exitCode}, ${metrics.body.length} B not ending in # EOF`,
    );
  }
  scope.requests++;
  const health = await adminRequest(path, { verb: AdminVerb.HEALTHZ, json: true }, options);
  if (
    health.exitCode !== 0 ||
    (JSON.parse(health.body) as { healthy?: boolean }).healthy !== true
  ) {
    throw new AnswerMismatch(`HEALTHZ: exit ${health.exitCode}, ${health.body.slice(0, 200)}`);
  }
  scope.requests++;
};

/**
 * A client that pipelines many GETs of a large value, reads nothing for a
 * second or two, then reads one chunk at a time: every answer must still
 * arrive, in order, byte for byte — and the daemon must hold its answers
 * back instead of buffering them (DESIGN §6: a connection's memory is
 * bounded), which shows as its RSS barely moving during the stall.
 */
/**
 * A fresh daemon's RSS climbs by itself for its first seconds (its heap
 * growing while the other loops refill its store: 6 → 169 MiB in 2 s seen
 * after a kill), so a stall then measures that, not the stalled connection.
 */
const WARM_DAEMON_MS = 5000;

const slowReader: Task = async (ctx, scope) => {
  const key = Buffer.from(scope.key());
  // Alternating, the big stall second: the first one (in the warm-up) may
  // run before the daemon exists, when there is no RSS to compare.
  const [size, count] = ctx.slowReaderRuns++ % 2 === 0 ? [256 * KiB, 48] : [MAX_VALUE, 64];
  const want = value(ctx, scope, size);
  const daemon = await ctx.processes.daemon();
  const { socket, route } = await serviceSocket(ctx, scope);
  const reader = new FrameReader(socket, { pauseMs: 2 });
  scope.doing = `slow reader: SET of ${size} B (route ${route})`;
  socket.write(kvFrame({ op: 'set', key, value: want, ttlMs: 0 }, 1n));
  expectResult('slow reader SET', kvAnswer(await reader.next(), 1n), 'stored');
  scope.requests++;
  const before = daemon && rssKib(daemon.pid);
  const young = daemon !== undefined && Date.now() - daemon.startedAtUnixMs < WARM_DAEMON_MS;
  reader.hold();
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++)
    frames.push(kvFrame({ op: 'get', key, waitMs: 0 }, BigInt(i + 2)));
  frames.push(kvFrame({ op: 'delete', key }, BigInt(count + 2)));
  socket.write(Buffer.concat(frames));
  scope.doing = `slow reader: stalled on ${count} GETs of ${size} B (route ${route})`;
  await new Promise((r) => setTimeout(r, 1000 + randomInt(1000)));
  const after = daemon && rssKib(daemon.pid);
  reader.release();
  scope.doing = `slow reader: reading ${count} GETs of ${size} B slowly (route ${route})`;
  for (let i = 0; i < count; i++) {
    const hit = kvAnswer(await reader.next(), BigInt(i + 2));
    const what = `slow reader GET ${i + 1}/${count}`;
    expectResult(what, hit, 'found');
    expectSame(what, hit.result === 'found' ? hit.value : undefined, want);
    scope.requests++;
  }
  expectResult('slow reader DEL', kvAnswer(await reader.next(), BigInt(count + 2)), 'deleted');
  scope.requests++;
  socket.destroy();
  // Only the 64 MiB stall is judged: against 12 MiB, other traffic's noise
  // in the daemon's RSS would be too loud; on a young daemon, its own growth.
  const judgeable = before !== undefined && after !== undefined && size * count >= 64 * MiB;
  if (judgeable && young) ctx.stallsOnYoungDaemon++;
  else if (judgeable) {
    const grewKib = after - before;
    ctx.stallsJudged++;
    ctx.stallGrowthKib = Math.max(ctx.stallGrowthKib, grewKib);
    // Three quarters of the unread answers: far above what a bounded
    // connection holds (a high-water mark and an answer, ~2 MiB), below
    // what an unbounded one does (all of it, 64 MiB and up: 115 MiB was
    // seen). Half was too tight: the other loops' 1 MiB SETs move the
    // daemon's RSS by up to ~36 MiB in a fresh daemon's first seconds.
    const boundKib = (size * count * 3) / 4 / KiB;
    if (grewKib > boundKib) {
      throw new OutboundNotBounded(
        `daemon pid ${daemon!.pid} RSS grew ${Math.round(grewKib / 1024)} MiB while a reader stalled on ${count} answers of ${size / KiB} KiB (${(size * count) / MiB} MiB); bound ${boundKib / 1024} MiB`,
      );
    }
  }
};

function helloFrame(): Buffer {
  return asBuffer(
    encodeFramed(
      requestFrame({
        payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
        payload: Hello.encode({
          clientMinProtocol: PROTOCOL_VERSION,
          clientMaxProtocol: PROTOCOL_VERSION,
          serviceName: SERVICE,
          wantedVersion: VERSION,
          clientCapabilities: CAP_HANDLE_PASSING,
          peerPid: process.pid,
          clientLibName: '@handoff/soak',
        }),
        requestId: 1n,
      }),
    ),
  );
}

/** Connects to the broker by hand, writes `bytes` and closes at once, without reading. */
function writeAndClose(ctx: TrafficContext, scope: Scope, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = scope.track(connect({ path: ctx.processes.brokerSocket }));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.end(bytes);
      socket.destroy();
    });
    socket.once('close', () => resolve());
  });
}

/**
 * Writes `bytes` on a handed-off socket, waits `lingerMs`, and destroys it
 * unread. The daemon at the other end may be gone already (the campaign
 * kills daemons), so the write can fail with EPIPE or ECONNRESET: for a
 * client that leaves anyway that is no failure, and an 'error' without a
 * listener would take the whole runner down.
 */
export async function leaveRudely(socket: Socket, bytes: Uint8Array, lingerMs: number) {
  socket.on('error', () => {});
  socket.write(bytes);
  if (lingerMs > 0) await new Promise((r) => setTimeout(r, lingerMs));
  socket.destroy();
}

const ABRUPT_VARIANTS = ['after_hello', 'hello_and_first_request', 'mid_request', 'reset'] as const;

/**
 * Clients that leave rudely: right after the Hello, with a first request in
 * flight during the handoff, halfway through a request frame, or with
 * answers on their way (the daemon's write meets a closed peer). Nothing is
 * checked here; whatever they break shows up in the other traffic and in
 * the fd and memory figures.
 */
const abrupt: Task = async (ctx, scope) => {
  const variant = ABRUPT_VARIANTS[scope.seq % ABRUPT_VARIANTS.length]!;
  switch (variant) {
    case 'after_hello':
      await writeAndClose(ctx, scope, helloFrame());
      break;
    case 'hello_and_first_request': {
      const set = kvFrame(
        { op: 'set', key: Buffer.from(scope.key()), value: value(ctx, scope, 100 * KiB), ttlMs: 0 },
        1n,
      );
      await writeAndClose(ctx, scope, Buffer.concat([helloFrame(), set]));
      break;
    }
    case 'mid_request': {
      const { socket } = await serviceSocket(ctx, scope);
      const set = kvFrame(
        { op: 'set', key: Buffer.from(scope.key()), value: value(ctx, scope, 64 * KiB), ttlMs: 0 },
        1n,
      );
      await leaveRudely(socket, set.subarray(0, set.length >> 1), 0);
      break;
    }
    case 'reset': {
      const { socket } = await serviceSocket(ctx, scope);
      const gets = Array.from({ length: 16 }, (_, i) => kvFrame({ op: 'stats' }, BigInt(i + 1)));
      // Let the answers start, then close with them unread.
      await leaveRudely(socket, Buffer.concat(gets), 5);
      break;
    }
  }
  scope.requests++;
};

export const TASKS: Record<TrafficKind, Task> = {
  handoff,
  handoff_first_request: handoffFirstRequest,
  line: lineWire,
  probe,
  admin,
  slow_reader: slowReader,
  abrupt,
};

/** How often each kind is picked, relative; slow readers are also capped at one at a time by campaign.ts. */
export const WEIGHTS: Record<TrafficKind, number> = {
  handoff: 3,
  handoff_first_request: 2,
  line: 2,
  probe: 1,
  admin: 1,
  slow_reader: 1,
  abrupt: 1.5,
};

/** A task's own deadline: past it, the task is torn down and counted as a hang. */
export const TASK_DEADLINE_MS: Record<TrafficKind, number> = {
  handoff: 20_000,
  handoff_first_request: 20_000,
  line: 20_000,
  probe: 20_000,
  admin: 20_000,
  slow_reader: 40_000,
  abrupt: 20_000,
};
