// `npm run bench -- instructions`: the instructions one handoff costs each
// process — the client (connectService), the broker and the daemon — against
// the same process of the wire floor (bare-handoff.mjs wire-broker and
// wire-daemon, with a hand-written client: the handoff of record done the
// cheapest right way in Node). Counted with callgrind in the steady state:
// each process in its turn runs under valgrind while the others run
// natively, a client warms everything up, the counters are zeroed, and a
// fixed number of sequential connects is counted. The capacity suite's
// throughput line says how fast; this one says, without the machine's
// noise, where the work is and how much of it is ours.
// Knobs: BENCH_INSTRUCTIONS_WARMUP (connects before counting, default 4000),
// BENCH_INSTRUCTIONS_CONNECTS (counted, default 2000).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emit, line, summarize } from '../measure.ts';
import { startBareHandoff } from './bare-handoff.ts';
import {
  COUNTED_NODE_ARGS,
  callgrindPrefix,
  dumpCounters,
  type InstructionCounts,
  readCounts,
  requireCallgrind,
  zeroCounters,
} from './callgrind.ts';
import { stopChildren } from './child-processes.ts';
import { childrenOf } from './probe-wire.mjs';

type Role = 'client' | 'broker' | 'daemon';
type Side = 'ours' | 'wire';
const ROLES: readonly Role[] = ['client', 'broker', 'daemon'];

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

interface Servers {
  path: string;
  /** The pid of the broker or the daemon, once there is one. */
  pid(role: 'broker' | 'daemon'): number;
  stop(): Promise<void>;
}

async function ready(child: ChildProcess, what: string): Promise<void> {
  const up = await Promise.race([
    once(child.stdout!, 'data').then(() => true),
    once(child, 'exit').then(() => false),
  ]);
  if (!up) throw new Error(`${what} exited before it was ready`);
}

/** Our broker (broker-process.mjs) and its echo daemon; `under` for the one counted. */
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
  await ready(broker, 'broker-process.mjs');
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

/** The wire floor's broker and daemon; `under` for the one counted. */
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
  const clientScript = join(import.meta.dirname, 'instructions-client.mjs');
  const argv = [
    ...(role === 'client' ? callgrindPrefix(outFile) : []),
    process.execPath,
    ...(role === 'client' ? COUNTED_NODE_ARGS : []),
    clientScript,
    side === 'ours' && role === 'client' ? 'handoff' : 'wire',
    servers.path,
    String(warmup),
    String(connects),
  ];
  const client = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const lines = client.stdout!.setEncoding('utf8');
    const next = async (word: string) => {
      for (;;) {
        const [chunk] = (await Promise.race([
          once(lines, 'data'),
          once(client, 'exit').then(() => {
            throw new Error(`instructions-client.mjs exited before "${word}"`);
          }),
        ])) as [string];
        if (chunk.includes(word)) return;
      }
    };
    await next('warm');
    const pid = role === 'client' ? client.pid! : servers.pid(role);
    await zeroCounters(pid);
    client.stdin!.write('go\n');
    await next('done');
    const file = await dumpCounters(pid, outFile, 1);
    const counts = await readCounts(file);
    const per = (n: number) => Math.round(n / connects);
    return {
      total: per(counts.total),
      gc: per(counts.gc),
      compiler: per(counts.compiler),
      mutator: per(counts.mutator),
    };
  } finally {
    client.stdin!.end();
    await stopChildren([client]);
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
  const warmup = env('BENCH_INSTRUCTIONS_WARMUP', 4000);
  const connects = env('BENCH_INSTRUCTIONS_CONNECTS', 2000);
  const root = mkdtempSync(join(tmpdir(), 'handoff-bench-instructions-'));
  try {
    const sum = (cs: InstructionCounts[]): InstructionCounts => ({
      total: cs.reduce((a, c) => a + c.total, 0),
      gc: cs.reduce((a, c) => a + c.gc, 0),
      compiler: cs.reduce((a, c) => a + c.compiler, 0),
      mutator: cs.reduce((a, c) => a + c.mutator, 0),
    });
    const all: Record<Side, InstructionCounts[]> = { ours: [], wire: [] };
    for (const role of ROLES) {
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
        }),
      );
    }
    emit(
      instructionsLine('broker.handoff.instructions', sum(all.ours), sum(all.wire), {
        of: 'client + broker + daemon',
        warmup_connects: warmup,
        connects,
      }),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
