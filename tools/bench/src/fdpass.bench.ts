// The fdpass suite: fds/s between two processes through @handoff/fdpass at
// 1 and 16 fds per message, against C sendmsg/recvmsg, Python
// send_fds/recv_fds and Node's built-in child.send(msg, socket), all
// measured in this run; how long starting a process blocks the caller,
// spawnProcess against child_process.spawn; and one small message at a time
// back and forth (ping-pong), against node:net. The helpers live in
// ./fdpass/; this file schedules rounds and prints the lines.
// BENCH_FDPASS_CASES=send_recv,spawn,ping_pong runs some of the cases
// (default: all).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BuiltinIpc, startBuiltinIpc } from './fdpass/builtin-ipc.ts';
import {
  buildCBaseline,
  type NativeRound,
  runCRound,
  runPythonRound,
} from './fdpass/native-baselines.ts';
import { pingPongLine } from './fdpass/ping-pong.ts';
import { spawnStallLine } from './fdpass/spawn-stall-case.ts';
import { emit, line, summarize, type Throughput } from './measure.ts';

const ROUNDS = 7;
// Messages per timed round: about 0.25 s of C and 1 s of the slowest
// implementation, long enough that one scheduler hiccup is not the round.
// 1 fd/message: issue 17 asks for 0.9x the C pair (was 0.6).
const CASES = [
  { fdsPerMessage: 1, messages: 1 << 17, vsC: 0.9 },
  { fdsPerMessage: 16, messages: 1 << 15, vsC: 0.5 },
] as const;
const TARGET_VS_PYTHON = 1.2;
/** Messages per sendmmsg in the batched C baseline: our sender's default (WRITE_BATCH in ours.ts). */
const C_SEND_BATCH = 64;
const TARGET_VS_BUILTIN = 100;

/** The burst the issue names for Node's built-in, and the time we allow it. */
const BUILTIN_BURST = 20_000;
const BUILTIN_BUDGET_MS = 25_000;
const BUILTIN_ROUNDS = 3;

type Impl = 'c' | 'cBatch' | 'python' | 'ours';
/** Runs one timed round of our case in fresh processes (fdpass/ours-sender.ts). */
type OursRound = (dir: string, messages: number, k: number) => Promise<NativeRound>;

export async function fdpassSuite(): Promise<void> {
  await buildCBaseline();
  const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-fdpass-'));
  let ours: OursRound | undefined;
  let oursError: unknown;
  try {
    try {
      const { runOursRound } = await import('./fdpass/ours.ts');
      await runOursRound(dir, 1024, 1); // can our case run here at all?
      ours = runOursRound;
    } catch (err) {
      oursError = err;
      console.error(`# fdpass: our case cannot run, measuring baselines only: ${String(err)}`);
    }

    const cases = process.env.BENCH_FDPASS_CASES?.split(',');
    const runs = (name: string) => cases === undefined || cases.includes(name);
    const results = [];
    for (const c of runs('send_recv') ? CASES : []) {
      const k = c.fdsPerMessage;
      const { messages } = c;
      const fdsPerRound = messages * k;
      console.error(`# fdpass ${k} fd/message: ${ROUNDS} rounds of ${messages} messages`);
      const rates: Record<Impl, number[]> = { c: [], cBatch: [], python: [], ours: [] };
      for (let r = 0; r < ROUNDS; r++) {
        // Rotate the order so no implementation always runs right after
        // another's teardown on this 2-core machine.
        const order: Impl[] = ['c', 'cBatch', 'python', 'ours'];
        for (let i = 0; i < r % order.length; i++) order.push(order.shift()!);
        for (const impl of order) {
          const seconds = await runImpl(impl, ours, dir, messages, k);
          if (seconds === undefined) continue;
          rates[impl].push(fdsPerRound / seconds);
          console.error(`#   ${impl.padEnd(6)} ${fmt(fdsPerRound / seconds)} fds/s`);
        }
      }
      results.push({
        ...c,
        c: summarize(rates.c),
        cBatch: summarize(rates.cBatch),
        python: summarize(rates.python),
        ours: summarize(rates.ours),
      });
    }

    // Node's built-in is the send_recv lines' baseline only.
    const builtin = results.length > 0 ? await measureBuiltin(dir) : undefined;

    if (builtin !== undefined)
      for (const r of results) {
        const k = r.fdsPerMessage;
        const common = { fds_per_message: k, messages_per_round: r.messages, rounds: ROUNDS };
        if (ours === undefined) {
          console.error(
            `# fdpass ${k} fd/message baselines: c ${fmt(r.c.opsPerSec)} fds/s, python ${fmt(r.python.opsPerSec)} fds/s`,
          );
          continue;
        }
        const bench = `fdpass.send_recv.${k}fd`;
        emit(withTarget(line(bench, r.ours, `c.sendmsg.${k}fd`, r.c, common), r.ours, r.c, r.vsC));
        // Our sender batches with sendmmsg (writeBatch); C doing the same is on
        // record beside the baseline, so the batching is not hidden.
        emit({
          ...line(bench, r.ours, `c.sendmmsg${C_SEND_BATCH}.${k}fd`, r.cBatch, common),
          target: 'none: C with the same send batching as ours, on record',
        });
        emit(
          withTarget(
            line(bench, r.ours, `python.send_fds.${k}fd`, r.python, common),
            r.ours,
            r.python,
            TARGET_VS_PYTHON,
          ),
        );
        emit(
          withTarget(
            line(bench, r.ours, `node.child_send.burst${builtin.burst}`, builtin.rate, {
              ...common,
              builtin_burst: builtin.burst,
              builtin_burst_wanted: BUILTIN_BURST,
              builtin_ramp: builtin.ramp,
              ...(builtin.note === undefined ? {} : { builtin_note: builtin.note }),
            }),
            r.ours,
            builtin.rate,
            TARGET_VS_BUILTIN,
          ),
        );
      }
    if (ours !== undefined && runs('spawn')) {
      console.error('# fdpass spawn: caller blocked per process start, posix_spawn vs fork');
      emit(await spawnStallLine());
    }
    if (ours !== undefined && runs('ping_pong')) {
      console.error('# fdpass ping-pong: one 100-byte message at a time, vs node:net');
      emit(await pingPongLine(dir));
    }
    if (ours === undefined) {
      if (builtin !== undefined)
        console.error(
          `# fdpass node built-in: ${fmt(builtin.rate.opsPerSec)} handles/s (burst ${builtin.burst})`,
        );
      throw new Error(`fdpass: our case did not run: ${String(oursError)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runImpl(
  impl: Impl,
  ours: OursRound | undefined,
  dir: string,
  messages: number,
  k: number,
): Promise<number | undefined> {
  switch (impl) {
    case 'c':
      return (await runCRound(messages, k)).seconds;
    case 'cBatch':
      return (await runCRound(messages, k, C_SEND_BATCH)).seconds;
    case 'python':
      return (await runPythonRound(messages, k)).seconds;
    case 'ours':
      return ours === undefined ? undefined : (await ours(dir, messages, k)).seconds;
  }
}

interface BuiltinResult {
  burst: number;
  rate: Throughput;
  /** Every burst tried on the way up, so the size dependence is visible. */
  ramp: { burst: number; handles_per_s: number }[];
  note?: string;
}

/**
 * Node replays its whole pending-handle queue on every ack, so a burst's
 * cost grows with the square of its size; 20k handles can take minutes.
 * We double the burst from 1250 while the next one is predicted to fit the
 * budget (4.5x the last, as for a quadratic), then repeat the largest.
 */
async function measureBuiltin(dir: string): Promise<BuiltinResult> {
  const ipc: BuiltinIpc = await startBuiltinIpc(dir);
  try {
    const start = performance.now();
    const left = () => BUILTIN_BUDGET_MS - (performance.now() - start);
    await ipc.round(500, 10_000); // warm-up: child loaded, JIT warm
    const ramp: BuiltinResult['ramp'] = [];
    let burst = 1250;
    let rates: number[] = [];
    let note: string | undefined;
    for (;;) {
      console.error(`# fdpass node built-in: burst of ${burst} handles`);
      const r = await ipc.round(burst, Math.max(left(), 1000));
      const rate = r.handles / r.seconds;
      ramp.push({ burst, handles_per_s: Math.round(rate) });
      console.error(`#   builtin ${fmt(rate)} handles/s${r.capped ? ' (capped)' : ''}`);
      if (r.capped) {
        note = `burst of ${burst} capped after ${r.handles} handles; rate is partial`;
        rates = [rate];
        break;
      }
      rates = [rate];
      const next = burst * 2;
      const predictedMs = r.seconds * 1000 * 4.5 * BUILTIN_ROUNDS;
      if (next > BUILTIN_BURST || predictedMs > left()) {
        // Repeat the largest burst that fit for a median.
        while (rates.length < BUILTIN_ROUNDS && r.seconds * 1000 < left()) {
          const again = await ipc.round(burst, Math.max(left(), 1000));
          rates.push(again.handles / again.seconds);
          console.error(`#   builtin ${fmt(again.handles / again.seconds)} handles/s`);
          if (again.capped) {
            note = `a repeat of the ${burst} burst was capped after ${again.handles} handles`;
            break;
          }
        }
        break;
      }
      burst = next;
    }
    if (burst < BUILTIN_BURST && note === undefined) {
      note = `burst of ${BUILTIN_BURST} would exceed the ${BUILTIN_BUDGET_MS / 1000} s budget (cost grows ~quadratically); measured ${burst}`;
    }
    return { burst, rate: summarize(rates), ramp, ...(note === undefined ? {} : { note }) };
  } finally {
    await ipc.close();
  }
}

/** Judged on the unrounded ratio: the line's `ratio` keeps 2 digits only. */
function withTarget<T extends ReturnType<typeof line>>(
  l: T,
  ours: Throughput,
  baseline: Throughput,
  target: number,
): T {
  return {
    ...l,
    baseline_spread: Number(baseline.spread.toPrecision(2)),
    target_ratio: target,
    meets_target: baseline.opsPerSec > 0 && ours.opsPerSec / baseline.opsPerSec >= target,
  };
}

function fmt(n: number): string {
  return n >= 1e6
    ? `${(n / 1e6).toFixed(2)}M`
    : n >= 1e3
      ? `${(n / 1e3).toFixed(1)}k`
      : n.toFixed(0);
}
