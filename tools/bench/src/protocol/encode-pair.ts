// The protocol.encode_framed.small case: encodeFramed against the bare
// protobufjs static encoder, measured in dedicated loops (one call site per
// encoder, never shared with another case) as alternating rounds, so that
// neither the JIT state of a shared timing loop nor a slow phase of the
// machine lands on one side only. Used in-process by the protocol suite and,
// for the fresh-process distribution, by protocol.bench.ts run as a script.
// The generated encoder is passed in: only protocol.bench.ts may import it.
import { encodeFramed, type Frame, FrameKind, requestFrame } from '@handoff/protocol';
import protobuf from 'protobufjs/minimal.js';
import { summarize, type Throughput } from '../measure.ts';

/** The frame as protobufjs's generated code takes it (Long for 64-bit fields). */
export interface LongFrame {
  envelopeVersion: number;
  kind: number;
  payloadProtocol: number;
  payload: Uint8Array;
  requestId: protobuf.Long;
  traceparent: string;
}

/** The generated static encoder (running_process.broker.v1.Frame). */
export interface GeneratedEncoder {
  encode(frame: LongFrame): { finish(): Uint8Array };
}

/** Alternating round pairs; the ratio is the median of the pairs' ratios. */
export const PAIRS = 21;
/** Length of one round; a pair is two of them, short against the machine's slow phases. */
const ROUND_MS = 25;
/** Untimed calls of each encoder before calibrating (a count, not a duration). */
const WARMUP_CALLS = 50_000;

export interface EncodePair {
  ours: Throughput;
  base: Throughput;
  /** Median of the per-pair ratios ours ÷ protobufjs. */
  ratio: number;
  /** Every pair's ratio, in order. */
  pairRatios: number[];
}

export function encodeCaseFrames(): { ours: Frame; long: LongFrame } {
  const payload = new Uint8Array(64).fill(0x5a);
  const ours = requestFrame({
    payloadProtocol: 0xf001,
    payload,
    requestId: 123_456_789n,
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  });
  const long: LongFrame = {
    envelopeVersion: 1,
    kind: FrameKind.REQUEST,
    payloadProtocol: 0xf001,
    payload,
    // protobufjs's own 64-bit form ({ low, high, unsigned }), as its users pass it.
    requestId: protobuf.util.LongBits.from(123_456_789).toLong(true),
    traceparent: ours.traceparent,
  };
  return { ours, long };
}

// One loop per encoder: each call site sees one callee and one frame shape
// for the life of the process, so its optimized code never deopts when the
// other encoder (or another case) runs.
function loopOurs(frame: Frame, n: number): number {
  let sink = 0;
  for (let i = 0; i < n; i++) sink += encodeFramed(frame).length;
  return sink;
}

function loopBase(generated: GeneratedEncoder, frame: LongFrame, n: number): number {
  let sink = 0;
  for (let i = 0; i < n; i++) sink += generated.encode(frame).finish().length;
  return sink;
}

export function measureEncodePair(generated: GeneratedEncoder): EncodePair {
  const frames = encodeCaseFrames();
  let sink = 0;
  for (let done = 0; done < WARMUP_CALLS; done += 1000) {
    sink += loopOurs(frames.ours, 1000);
    sink += loopBase(generated, frames.long, 1000);
  }
  const nOurs = calibrate((n) => loopOurs(frames.ours, n));
  const nBase = calibrate((n) => loopBase(generated, frames.long, n));
  const oursRates: number[] = [];
  const baseRates: number[] = [];
  const pairRatios: number[] = [];
  for (let p = 0; p < PAIRS; p++) {
    // ABAB... then BABA...: neither side always runs first in a pair.
    let ours = 0;
    let base = 0;
    if (p % 2 === 0) {
      ours = rate(() => (sink += loopOurs(frames.ours, nOurs)), nOurs);
      base = rate(() => (sink += loopBase(generated, frames.long, nBase)), nBase);
    } else {
      base = rate(() => (sink += loopBase(generated, frames.long, nBase)), nBase);
      ours = rate(() => (sink += loopOurs(frames.ours, nOurs)), nOurs);
    }
    oursRates.push(ours);
    baseRates.push(base);
    pairRatios.push(ours / base);
  }
  if (sink === 42) console.error('unreachable');
  const sorted = [...pairRatios].sort((a, b) => a - b);
  return {
    ours: summarize(oursRates),
    base: summarize(baseRates),
    ratio: sorted[Math.floor(sorted.length / 2)] ?? 0,
    pairRatios,
  };
}

/** Calls per round so that one round lasts about ROUND_MS. */
function calibrate(run: (n: number) => number): number {
  let n = 1000;
  for (;;) {
    const t0 = performance.now();
    run(n);
    const dt = performance.now() - t0;
    if (dt >= ROUND_MS / 4) return Math.max(1, Math.ceil((n * ROUND_MS) / dt));
    n *= 2;
  }
}

function rate(run: () => void, n: number): number {
  const t0 = process.hrtime.bigint();
  run();
  return (n * 1e9) / Number(process.hrtime.bigint() - t0);
}
