// `npm run bench -- instructions`: the instructions one handoff costs each
// process — the client (connectService), the broker and the daemon — against
// the same process of the wire floor (bare-handoff.mjs wire-broker and
// wire-daemon, with a hand-written client: the handoff of record done the
// cheapest right way in Node). Counted with callgrind in the steady state:
// each process in its turn runs under valgrind while the others run
// natively, a client warms everything up, and a fixed number of sequential
// connects is counted (see countClient and countServer for how). The capacity
// suite's throughput line says how fast; this one says, without the
// machine's noise, where the work is and how much of it is ours.
// Knobs: BENCH_INSTRUCTIONS_WARMUP (connects before counting, default 8000),
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
import { startBareHandoff } from './bare-handoff.ts';
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

function rolesWanted(list: string | undefined): readonly Role[] {
  if (list === undefined) return ROLES;
  const named = list.split(',').filter(Boolean);
  const unknown = named.filter((r) => !ROLES.includes(r as Role));
  if (unknown.length > 0 || named.length === 0)
    throw new Error(
      `BENCH_INSTRUCTIONS_ROLES: name some of ${ROLES.join(', ')}; got ${JSON.stringify(list)}`,
    );
  return ROLES.filter((r) => named.includes(r));
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

/** The client script, started; under callgrind when it is the one counted. */
function startClient(
  side: Side,
  role: Role,
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
    ...(role === 'client' ? callgrindPrefix(outFile) : []),
    process.execPath,
    ...(role === 'client' ? COUNTED_NODE_ARGS : []),
    join(import.meta.dirname, 'instructions-client.mjs'),
    side === 'ours' && role === 'client' ? 'handoff' : 'wire',
    path,
    String(warmup),
    String(connects),
    ...(goFile ? [goFile] : []),
  ];
  return spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', role === 'client' ? 'ignore' : 'pipe', 'inherit'],
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
  side: Side,
  servers: Servers,
  warmup: number,
  connects: number,
): Promise<InstructionCounts> {
  const totals: InstructionCounts[] = [];
  for (const n of [0, connects]) {
    const outFile = join(dir, `client-${n}.callgrind`);
    const client = startClient(side, 'client', servers.path, outFile, warmup, n);
    const [code] = (await once(client, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`instructions-client.mjs (${side}) exited with ${code}`);
    totals.push(await readCounts(outFile));
  }
  const [base, counted] = totals as [InstructionCounts, InstructionCounts];
  return perConnect(
    fieldwise((c, b) => c - b, counted, base),
    connects,
  );
}

/**
 * A server counted: it runs under callgrind while a native client warms it
 * up and waits; a dump marks the start (it starts the counters afresh),
 * the client runs `connects`, and a second dump holds exactly them.
 */
async function countServer(
  dir: string,
  servers: Servers,
  role: 'broker' | 'daemon',
  outFile: string,
  warmup: number,
  connects: number,
): Promise<InstructionCounts> {
  const goFile = join(dir, 'go');
  const client = startClient('wire', role, servers.path, outFile, warmup, connects, goFile);
  try {
    await untilPrinted(client, 'warm', 'instructions-client.mjs');
    const pid = servers.pid(role);
    await dumpCounters(pid, outFile, 1);
    writeFileSync(goFile, '');
    await untilPrinted(client, 'done', 'instructions-client.mjs');
    return perConnect(await readCounts(await dumpCounters(pid, outFile, 2)), connects);
  } finally {
    await stopChildren([client]);
  }
}

/** Counts `role` of `side` over `connects` sequential connects after `warmup`. */
async function count(
  root: string,
  side: Side,
  role: Role,
  warmup: number,
  connects: number,
): Promise<InstructionCounts> {
  const dir = join(root, `${side}-${role}`);
  const outFile = join(dir, 'callgrind.out');
  mkdirSync(join(dir, 'ours'), { recursive: true });
  const servers = await (side === 'ours' ? startOurs : startWire)(dir, role, outFile);
  try {
    return role === 'client'
      ? await countClient(dir, side, servers, warmup, connects)
      : await countServer(dir, servers, role, outFile, warmup, connects);
  } finally {
    await servers.stop();
  }
}

function instructionsLine(
  bench: string,
  ours: InstructionCounts,
  wire: InstructionCounts,
  extra: Record<string, unknown>,
) {
  // As throughput: connects per 10⁹ instructions, so the ratio reads like the others (higher is better).
  const rate = (c: InstructionCounts) => summarize([1e9 / c.total]);
  return {
    ...line(bench, rate(ours), 'wire_floor', rate(wire)),
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
  const roles = rolesWanted(process.env.BENCH_INSTRUCTIONS_ROLES);
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
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
