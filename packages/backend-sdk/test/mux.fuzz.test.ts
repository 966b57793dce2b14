// Property tests of BackendEndpointMux.poll over mutated captured traffic
// (what a real FrameClient and prober wrote to serveDaemon): only MuxError
// escapes, every verdict consumes or stops, and the verdicts do not depend
// on how the stream was chunked. Also keeps the framed corpora fresh.
import {
  DaemonProcess,
  encodeFramed,
  FRAMING_VERSION,
  FrameKind,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  MAX_FRAME_BYTES,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import { arbCuts, arbMutated, chunk } from '@handoff/testkit/mutations';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BackendEndpointMux, type DaemonIdentity, MuxError } from '../src/index.js';
import {
  captureFramedSessions,
  frameShape,
  framesOf,
  protocolCorpusDir,
  readCorpus,
  SERVED_PROTOCOL,
  writeCorpus,
} from './corpus-capture.js';

const FRAMED = new URL('framed-sessions.json', protocolCorpusDir);
const REGENERATE = 'REGENERATE_CORPUS=1 npx vitest run packages/backend-sdk/test/mux.fuzz.test.ts';

/** Random on every capture: the probe's nonce (its request id and payload) and the identity answer. */
const VOLATILE: Record<string, readonly ('requestId' | 'payload')[]> = {
  'probe-request': ['requestId', 'payload'],
  'probe-answer': ['requestId', 'payload'],
};

describe('framed-session corpus (packages/protocol/test/fixtures/corpus/framed-sessions.json)', () => {
  it('is what FrameClient, the prober and serveDaemon write today', async () => {
    const fresh = await captureFramedSessions();
    if (process.env.REGENERATE_CORPUS === '1') writeCorpus(FRAMED, REGENERATE, fresh);
    const stored = readCorpus(FRAMED);
    expect(Object.keys(stored).sort()).toEqual(Object.keys(fresh).sort());
    for (const [name, bytes] of Object.entries(fresh)) {
      const shape = (b: Uint8Array) => framesOf(b).map((f) => frameShape(f, VOLATILE[name] ?? []));
      expect(shape(stored[name]!), name).toEqual(shape(bytes));
      if (!VOLATILE[name]) expect(stored[name], name).toEqual(bytes);
    }
  }, 30_000);
});

const identity: DaemonIdentity = {
  process: DaemonProcess.create({
    pid: 4242,
    exePath: '/usr/bin/node',
    ipcEndpoint: { namespaceId: 'fuzz', path: '/tmp/fuzz.sock' },
    startedAtUnixMs: 1_700_000_000_000n,
    bootId: 'boot',
    exeHashAlgorithm: 'blake3',
    exeHash: new Uint8Array(32).fill(1),
  }),
  legacyExeSha256: new Uint8Array(32).fill(2),
};
const newMux = () =>
  new BackendEndpointMux({ daemon: identity, servedPayloadProtocols: [SERVED_PROTOCOL] });

type Step = { kind: string; consumed?: number; detail?: unknown };

/** Polls like a connection does: consume each verdict until the buffer needs more or ends. */
function drain(mux: BackendEndpointMux, buf: Uint8Array, steps: Step[]): Uint8Array {
  let rest = buf;
  for (;;) {
    let verdict: ReturnType<BackendEndpointMux['poll']>;
    try {
      verdict = mux.poll(rest);
    } catch (error) {
      // The property: nothing but a MuxError with a code ever escapes.
      if (!(error instanceof MuxError)) throw error;
      steps.push({ kind: 'error', detail: error.code });
      return new Uint8Array(0);
    }
    if (verdict.kind === 'NeedMoreBytes' || verdict.kind === 'Legacy') {
      steps.push({ kind: verdict.kind });
      return rest;
    }
    expect(verdict.consumed).toBeGreaterThan(0);
    expect(verdict.consumed).toBeLessThanOrEqual(rest.length);
    if (verdict.kind === 'ProbeAnswered') {
      const answer = tryDecodeFramed(verdict.reply);
      expect(answer?.consumed).toBe(verdict.reply.length);
      expect(answer?.frame.kind).toBe(FrameKind.RESPONSE);
      steps.push({ kind: 'probe', consumed: verdict.consumed, detail: answer?.frame.requestId });
    } else {
      steps.push({ kind: 'payload', consumed: verdict.consumed, detail: verdict.frame.requestId });
    }
    rest = rest.subarray(verdict.consumed);
  }
}

/** The verdicts seen when the stream arrives in `pieces`, the last one being final. */
function verdicts(pieces: Uint8Array[]): Step[] {
  const mux = newMux();
  const steps: Step[] = [];
  let buf = new Uint8Array(0);
  for (const piece of pieces) {
    const joined = new Uint8Array(buf.length + piece.length);
    joined.set(buf);
    joined.set(piece, buf.length);
    const before = steps.length;
    buf = drain(mux, joined, steps) as Uint8Array<ArrayBuffer>;
    const last = steps.at(-1);
    if (last?.kind === 'error' || last?.kind === 'Legacy') break;
    // A NeedMoreBytes before the end is not a verdict on the stream.
    if (steps.length > before && last?.kind === 'NeedMoreBytes') steps.pop();
  }
  const last = steps.at(-1);
  if (last?.kind !== 'error' && last?.kind !== 'Legacy') steps.push({ kind: 'NeedMoreBytes' });
  return steps;
}

describe('BackendEndpointMux.poll over mutated captured traffic', () => {
  const stored = readCorpus(FRAMED);
  const corpus = { requests: stored['client-requests']!, probe: stored['probe-request']! };
  const mutated = arbMutated(corpus, MAX_FRAME_BYTES);

  it('the unmutated corpus is answered: three payload frames, one probe (1 run)', () => {
    expect(verdicts([corpus.requests]).map((s) => s.kind)).toEqual([
      'payload',
      'payload',
      'payload',
      'NeedMoreBytes',
    ]);
    expect(verdicts([corpus.probe]).map((s) => s.kind)).toEqual(['probe', 'NeedMoreBytes']);
  });

  it('throws only MuxError, always consumes or stops, and is chunking-independent (numRuns 600)', () => {
    fc.assert(
      fc.property(mutated, arbCuts, ({ bytes }, cuts) => {
        const whole = verdicts([bytes]);
        expect(verdicts(chunk(bytes, cuts))).toEqual(whole);
      }),
      { numRuns: 600 },
    );
  });

  it('a header announcing 2^32-1 (or cap+1) bytes fails from the 5 header bytes alone (numRuns 50)', () => {
    fc.assert(
      fc.property(fc.constantFrom(0xffff_ffff, MAX_FRAME_BYTES + 1), (length) => {
        const header = new Uint8Array([FRAMING_VERSION, 0, 0, 0, 0]);
        new DataView(header.buffer).setUint32(1, length, true);
        let error: unknown;
        try {
          newMux().poll(header);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(MuxError);
        expect((error as MuxError).code).toBe('FRAMING');
      }),
      { numRuns: 50 },
    );
  });
});

describe('BackendEndpointMux regressions', () => {
  it('a probe whose trace context makes the answer pass the frame cap is a MuxError, not a FramingError', () => {
    // Seen while writing the cap-edge properties: a legal request (body at
    // the 16 MiB cap, most of it tracestate) whose echoed trace context plus
    // the identity answer makes a response over the cap; the FramingError
    // from encoding the answer escaped poll() untyped for the mux.
    const nonce = new Uint8Array(32).fill(7);
    const probeWith = (n: number) =>
      encodeFramed(
        requestFrame({
          payloadProtocol: IDENTITY_PROBE_PAYLOAD_PROTOCOL,
          payload: nonce,
          requestId: 1n,
          tracestate: 'a'.repeat(n),
        }),
      );
    // A request body of exactly the cap: legal, and its answer cannot fit.
    const guess = MAX_FRAME_BYTES - 64;
    const probe = probeWith(guess + MAX_FRAME_BYTES - (probeWith(guess).length - 5));
    expect(probe.length - 5).toBe(MAX_FRAME_BYTES);
    let error: unknown;
    try {
      newMux().poll(probe);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MuxError);
    expect((error as MuxError).code).toBe('MALFORMED_PROBE');
  });
});
