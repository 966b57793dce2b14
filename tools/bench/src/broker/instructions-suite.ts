// `npm run bench -- instructions`: the instructions one handoff costs each
// process — the client (connectService), the broker and the daemon — against
// the same process of the wire floor (bare-handoff.mjs wire-broker and
// wire-daemon, with a hand-written client: the handoff of record done the
// cheapest right way in Node). Counted with callgrind in the steady state:
// each process in its turn runs under valgrind while the others run
// natively, a client warms everything up, and a fixed number of sequential
// connects is counted (see countClient and countServer for how). The capacity
// suite's throughput line says how fast; this one says, without the
// machine's noise, where the work is and how much of it is ours. The broker
// is also counted on a Hello alone (the reconnect route), against the Hello
// floor of broker.hello_to_reply (see count). And a bare net.connect client
// is counted with plain options ({ path }) and with prototype-less ones, the
// way our sockets are made (see @handoff/broker's client/unix-connect.ts).
// Knobs: BENCH_INSTRUCTIONS_CASES (handoff, hello, connect; default all),
// BENCH_INSTRUCTIONS_WARMUP (connects before counting, default 8000),
// BENCH_INSTRUCTIONS_CONNECTS (counted, default 4000), BENCH_INSTRUCTIONS_LOOPS
// (connects in flight at once, default 1: under load, what each connection
// keeps alive is copied by every scavenge while it waits), and
// BENCH_INSTRUCTIONS_ROLES (which processes, default client,broker,daemon;
// the line for all three together only when all three are counted).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emit, line, summarize } from '../measure.ts';
import { startBareHandoff, startHelloFloor } from './bare-handoff.ts';
import {
  COUNTED_NODE_ARGS,
  callgrindPrefix,
  dumpCounters,
  fieldwise,
  type InstructionCounts,
  readCounts,
  requireCallgrind,
} from './callgrind.ts';
import { stopChildren, untilPrinted, untilReady } from './child-processes.ts';
import { childrenOf } from './probe-wire.mjs';

type Role = 'client' | 'broker' | 'daemon';
type Side = 'ours' | 'wire';
const ROLES: readonly Role[] = ['client', 'broker', 'daemon'];

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

type Case = 'handoff' | 'hello' | 'connect';
const CASES: readonly Case[] = ['handoff', 'hello', 'connect'];

/** Which of `all` the comma-separated `list` of knob `knob` names (all of them when unset). */
export function namedIn<T extends string>(
  knob: string,
  all: readonly T[],
  list: string | undefined,
): readonly T[] {
  if (list === undefined) return all;
  const named = list.split(',').filter(Boolean);
  const unknown = named.filter((r) => !all.includes(r as T));
  if (unknown.length > 0 || named.length === 0)
    throw new Error(`${knob}: name some of ${all.join(', ')}; got ${JSON.stringify(list)}`);
  return all.filter((r) => named.includes(r));
}

interface Servers {
  path: string;
  /** The pid of the broker or the daemon, once there is one. */
  pid(role: 'broker' | 'daemon'): number;
  stop(): Promise<void>;
}

/** Our broker (broker-process.mjs) and its echo daemon, the one `counted` under callgrind. */
async function startOurs(dir: string, counted: Role, outFile: string): Promise<Servers> {
  const path = join(dir, 'ours', 'broker.sock');
  const script = join(import.meta.dirname, 'broker-process.mjs');
  const prefix = counted === 'broker' ? callgrindPrefix(outFile) : [];
  const argv = [
    ...prefix,
    process.execPath,
    ...(counted === 'broker' ? COUNTED_NODE_ARGS : []),
    script,
    path,
  ];
  const broker = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      ...(counted === 'daemon'
        ? {
            BENCH_DAEMON_UNDER: callgrindPrefix(outFile).join(' '),
            BENCH_DAEMON_NODE_ARGS: COUNTED_NODE_ARGS.join(' '),
          }
        : {}),
    },
  });
  await untilReady(broker, 'broker-process.mjs');
  return {
    path,
    pid: (role) => {
      if (role === 'broker') return broker.pid!;
      const [daemon] = childrenOf(broker.pid!);
      if (daemon === undefined) throw new Error('the broker has no daemon');
      return daemon;
    },
    stop: () => stopChildren([broker]),
  };
}

/** The wire floor's broker and daemon, the one `counted` under callgrind. */
async function startWire(dir: string, counted: Role, outFile: string): Promise<Servers> {
  const under = { prefix: callgrindPrefix(outFile), nodeArgs: COUNTED_NODE_ARGS };
  const floor = await startBareHandoff(dir, {
    kind: 'wire',
    under: counted === 'client' ? {} : { [counted]: under },
  });
  return {
    path: floor.brokerPath,
    pid: (role) => floor.pids()[role === 'broker' ? 0 : 1]!,
    stop: floor.stop,
  };
}

/** What the client script does per connect (see instructions-client.mjs). */
type ClientMode = 'handoff' | 'wire' | 'hello' | 'connect-plain' | 'connect-bare';

/** The client script, started; under callgrind when it is the one `counted`. */
function startClient(
  mode: ClientMode,
  counted: boolean,
  path: string,
  outFile: string,
  warmup: number,
  connects: number,
  goFile?: string,
): ChildProcess {
  // The counted client gets no pipe on stdout: a process holding a pipe as
  // stdin or stdout cost about twice the instructions per connect (V8 kept
  // recompiling the stream code the pipe shares with the sockets).
  const argv = [
    ...(counted ? callgrindPrefix(outFile) : []),
    process.execPath,
    ...(counted ? COUNTED_NODE_ARGS : []),
    join(import.meta.dirname, 'instructions-client.mjs'),
    mode,
    path,
    String(warmup),
    String(connects),
    ...(goFile ? [goFile] : []),
  ];
  return spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', counted ? 'ignore' : 'pipe', 'inherit'],
  });
}

const perConnect = (c: InstructionCounts, n: number) => fieldwise((v) => Math.round(v / n), c);

/**
 * The client counted: two whole runs under callgrind, `warmup` connects
 * then none, and `warmup` then `connects`; the difference is the counted
 * connects, start-up and warm-up cancelling out, with no pipe to talk over
 * (see startClient).
 */
async function countClient(
  dir: string,
  mode: ClientMode,
  path: string,
  warmup: number,
  connects: number,
): Promise<InstructionCounts> {
  const totals: InstructionCounts[] = [];
  for (const n of [0, connects]) {
    const outFile = join(dir, `client-${mode}-${n}.callgrind`);
    const client = startClient(mode, true, path, outFile, warmup, n);
    const [code] = (await once(client, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`instructions-client.mjs (${mode}) exited with ${code}`);
    totals.push(await readCounts(outFile));
  }
  const [base, counted] = totals as [InstructionCounts, InstructionCounts];
  return perConnect(
    fieldwise((c, b) => c - b, counted, base),
    connects,
  );
}

/**
 * A server counted (the process `pid`): it runs under callgrind while a
 * native client (`mode`) warms it up and waits; a dump marks the start (it
 * starts the counters afresh), the client runs `connects`, and a second
 * dump holds exactly them.
 */
async function countServer(
  dir: string,
  path: string,
  pid: () => number,
  mode: ClientMode,
  outFile: string,
  warmup: number,
  connects: number,
): Promise<InstructionCounts> {
  const goFile = join(dir, 'go');
  const client = startClient(mode, false, path, outFile, warmup, connects, goFile);
  try {
    await untilPrinted(client, 'warm', 'instructions-client.mjs');
    const counted = pid();
    await dumpCounters(counted, outFile, 1);
    writeFileSync(goFile, '');
    await untilPrinted(client, 'done', 'instructions-client.mjs');
    return perConnect(await readCounts(await dumpCounters(counted, outFile, 2)), connects);
  } finally {
    await stopChildren([client]);
  }
}

/** The Hello floor (bare-handoff.mjs wire-hello) under callgrind, as the `Servers` a Hello count needs. */
async function startWireHello(dir: string, _counted: Role, outFile: string): Promise<Servers> {
  const floor = await startHelloFloor(join(dir, 'hello-floor.sock'), {
    service: 'echo-plain',
    version: '1.0.0',
    // Named in the reply, never dialled: the client stops at the reply.
    endpoint: join(dir, 'echo-plain.sock'),
    under: { prefix: callgrindPrefix(outFile), nodeArgs: COUNTED_NODE_ARGS },
  });
  return { path: floor.path, pid: () => floor.pid, stop: floor.stop };
}

/**
 * Counts `role` of `side` over `connects` sequential connects after
 * `warmup`: in a handoff, or (`hello`, the broker only) on the Hello alone,
 * the reconnect route, ours against the Hello floor (bare-handoff.mjs
 * wire-hello: the same reply done the cheapest right way in Node).
 */
async function count(
  root: string,
  side: Side,
  role: Role,
  warmup: number,
  connects: number,
  kind: Case = 'handoff',
): Promise<InstructionCounts> {
  const dir = join(root, `${side}-${kind === 'hello' ? 'hello' : role}`);
  const outFile = join(dir, 'callgrind.out');
  mkdirSync(join(dir, 'ours'), { recursive: true });
  const start = side === 'ours' ? startOurs : kind === 'hello' ? startWireHello : startWire;
  const servers = await start(dir, role, outFile);
  try {
    return role === 'client'
      ? await countClient(dir, side === 'ours' ? 'handoff' : 'wire', servers.path, warmup, connects)
      : await countServer(
          dir,
          servers.path,
          () => servers.pid(role),
          kind === 'hello' ? 'hello' : 'wire',
          outFile,
          warmup,
          connects,
        );
  } finally {
    await servers.stop();
  }
}

function instructionsLine(
  bench: string,
  ours: InstructionCounts,
  wire: InstructionCounts,
  extra: Record<string, unknown>,
  baseline = 'wire_floor',
) {
  // As throughput: connects per 10⁹ instructions, so the ratio reads like the others (higher is better).
  const rate = (c: InstructionCounts) => summarize([1e9 / c.total]);
  return {
    ...line(bench, rate(ours), baseline, rate(wire)),
    unit: 'connects per 10⁹ instructions (callgrind Ir); instructions per connect below',
    instructions_per_connect: ours.total,
    baseline_instructions_per_connect: wire.total,
    mutator: ours.mutator,
    gc: ours.gc,
    compiler: ours.compiler,
    baseline_mutator: wire.mutator,
    baseline_gc: wire.gc,
    baseline_compiler: wire.compiler,
    mutator_ratio: Number((wire.mutator / ours.mutator).toFixed(3)),
    ...extra,
  };
}

export async function instructionsSuite(): Promise<void> {
  await requireCallgrind();
  const warmup = env('BENCH_INSTRUCTIONS_WARMUP', 8000);
  const connects = env('BENCH_INSTRUCTIONS_CONNECTS', 4000);
  // The client script reads it from the environment it inherits.
  const loops = env('BENCH_INSTRUCTIONS_LOOPS', 1);
  const cases = namedIn('BENCH_INSTRUCTIONS_CASES', CASES, process.env.BENCH_INSTRUCTIONS_CASES);
  const roles = cases.includes('handoff')
    ? namedIn('BENCH_INSTRUCTIONS_ROLES', ROLES, process.env.BENCH_INSTRUCTIONS_ROLES)
    : [];
  const root = mkdtempSync(join(tmpdir(), 'handoff-bench-instructions-'));
  try {
    const sum = (cs: InstructionCounts[]) =>
      fieldwise((...v) => v.reduce((a, b) => a + b, 0), ...cs);
    const all: Record<Side, InstructionCounts[]> = { ours: [], wire: [] };
    for (const role of roles) {
      process.stderr.write(`instructions: counting the ${role}, ours and the wire floor's…\n`);
      // Both sides at once: instruction counts do not depend on the load.
      const [ours, wire] = await Promise.all([
        count(root, 'ours', role, warmup, connects),
        count(root, 'wire', role, warmup, connects),
      ]);
      all.ours.push(ours);
      all.wire.push(wire);
      emit(
        instructionsLine(`broker.handoff.instructions.${role}`, ours, wire, {
          warmup_connects: warmup,
          connects,
          loops,
        }),
      );
    }
    if (roles.length === ROLES.length)
      emit(
        instructionsLine('broker.handoff.instructions', sum(all.ours), sum(all.wire), {
          of: 'client + broker + daemon',
          warmup_connects: warmup,
          connects,
          loops,
        }),
      );
    if (cases.includes('hello')) {
      process.stderr.write('instructions: counting the broker on the Hello, ours and the floor…\n');
      const [ours, floor] = await Promise.all([
        count(root, 'ours', 'broker', warmup, connects, 'hello'),
        count(root, 'wire', 'broker', warmup, connects, 'hello'),
      ]);
      emit(
        instructionsLine(
          'broker.hello.instructions',
          ours,
          floor,
          { of: 'the broker', route: 'reconnect', warmup_connects: warmup, connects, loops },
          'wire.hello_floor',
        ),
      );
    }
    if (cases.includes('connect')) {
      process.stderr.write('instructions: counting a bare net.connect client, both ways…\n');
      const dir = join(root, 'connect');
      mkdirSync(dir);
      const path = join(dir, 'echo.sock');
      const echo = spawn(process.execPath, [join(import.meta.dirname, 'echo-process.mjs'), path], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        await untilReady(echo, 'echo-process.mjs');
        const [bare, plain] = await Promise.all([
          countClient(dir, 'connect-bare', path, warmup, connects),
          countClient(dir, 'connect-plain', path, warmup, connects),
        ]);
        emit(
          instructionsLine(
            'node.net_connect.instructions',
            bare,
            plain,
            {
              of: 'a client: net.connect to a Unix echo, one byte each way, destroy',
              options: '{ __proto__: null, path } (ours) vs { path }',
              target:
                'none: why our sockets get prototype-less options (client/unix-connect.ts), on record',
              warmup_connects: warmup,
              connects,
            },
            'net_connect.plain_options',
          ),
        );
      } finally {
        await stopChildren([echo]);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
