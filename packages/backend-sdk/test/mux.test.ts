import {
  CONTROL_PAYLOAD_PROTOCOL,
  DaemonProcess,
  encodeFramed,
  type Frame,
  FrameKind,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  PayloadEncoding,
  PROBE_NONCE_BYTES,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BackendEndpointMux,
  type DaemonIdentity,
  type LegacyClassification,
  MuxError,
  type MuxVerdict,
} from '../src/index.js';

const SERVED = 0x7001;

const identity: DaemonIdentity = {
  process: DaemonProcess.create({
    pid: process.pid,
    exePath: process.execPath,
    ipcEndpoint: { namespaceId: 'mux-test', path: '/tmp/mux-test.sock' },
    startedAtUnixMs: 1_700_000_000_000n,
    bootId: 'boot',
    idleTimeoutSecs: 30,
    exeHashAlgorithm: 'blake3',
    exeHash: new Uint8Array(32).fill(1),
  }),
  legacyExeSha256: new Uint8Array(32).fill(2),
};

/** Toy legacy wire: 4-byte LE length, then 4-byte LE version 15. */
const toyDetector = (buf: Uint8Array): LegacyClassification => {
  if (buf.length < 8) return 'NeedMoreBytes';
  const version = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(4, true);
  return version === 15 ? 'Legacy' : 'NotLegacy';
};

const mux = () =>
  new BackendEndpointMux({
    daemon: identity,
    servedPayloadProtocols: [SERVED],
    legacyDetector: toyDetector,
  });

const probeWire = (nonce: Uint8Array, requestId = 7n) =>
  encodeFramed(
    requestFrame({ payloadProtocol: IDENTITY_PROBE_PAYLOAD_PROTOCOL, payload: nonce, requestId }),
  );

function muxError(fn: () => unknown): MuxError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MuxError);
    return error as MuxError;
  }
  throw new Error('expected a MuxError');
}

describe('BackendEndpointMux (ported from the reference tests)', () => {
  it('empty and short buffers need more bytes', () => {
    expect(mux().poll(new Uint8Array())).toEqual({ kind: 'NeedMoreBytes' });
    // A leading 0x01 stays ambiguous until the detector can rule.
    expect(mux().poll(new Uint8Array([1, 0, 0]))).toEqual({ kind: 'NeedMoreBytes' });
  });

  it('the legacy header wins even when its byte 0 is the framing byte', () => {
    const legacy = new Uint8Array(8);
    const view = new DataView(legacy.buffer);
    view.setUint32(0, 257, true);
    view.setUint32(4, 15, true);
    expect(legacy[0]).toBe(1);
    expect(mux().poll(legacy)).toEqual({ kind: 'Legacy' });
    // A first byte that is not the framing byte goes to the consumer too.
    expect(mux().poll(new Uint8Array([42, 0, 0, 0, 0, 16, 0, 0, 0]))).toEqual({ kind: 'Legacy' });
  });

  it('answers a probe with the nonce, the identity and the legacy trailer', () => {
    const nonce = new Uint8Array(PROBE_NONCE_BYTES).fill(9);
    const wire = probeWire(nonce);
    expect(mux().poll(wire.subarray(0, wire.length - 1))).toEqual({ kind: 'NeedMoreBytes' });
    const verdict = mux().poll(wire);
    if (verdict.kind !== 'ProbeAnswered') throw new Error(`got ${verdict.kind}`);
    expect(verdict.consumed).toBe(wire.length);
    const reply = tryDecodeFramed(verdict.reply)!;
    expect(reply.consumed).toBe(verdict.reply.length);
    const frame = reply.frame;
    expect(frame.kind).toBe(FrameKind.RESPONSE);
    expect(frame.payloadProtocol).toBe(IDENTITY_PROBE_PAYLOAD_PROTOCOL);
    expect(frame.requestId).toBe(7n);
    expect(frame.payload.subarray(0, PROBE_NONCE_BYTES)).toStrictEqual(nonce);
    const rest = frame.payload.subarray(PROBE_NONCE_BYTES);
    expect(DaemonProcess.decode(rest)).toStrictEqual(identity.process);
    // The last 34 bytes are field 3 (0x1A), length 32, then the SHA-256.
    expect([...rest.subarray(rest.length - 34, rest.length - 32)]).toEqual([0x1a, 0x20]);
    expect(rest.subarray(rest.length - 32)).toStrictEqual(identity.legacyExeSha256);
  });

  it('echoes traceparent and tracestate in the probe answer', () => {
    const wire = encodeFramed(
      requestFrame({
        payloadProtocol: IDENTITY_PROBE_PAYLOAD_PROTOCOL,
        payload: new Uint8Array(32),
        requestId: 1n,
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        tracestate: 'a=b',
      }),
    );
    const verdict = mux().poll(wire);
    if (verdict.kind !== 'ProbeAnswered') throw new Error(verdict.kind);
    const frame = tryDecodeFramed(verdict.reply)!.frame;
    expect(frame.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(frame.tracestate).toBe('a=b');
  });

  it('passes a served payload frame through, whatever its kind', () => {
    for (const kind of [FrameKind.REQUEST, FrameKind.RESPONSE, FrameKind.EVENT, FrameKind.CANCEL]) {
      const request: Frame = {
        ...requestFrame({
          payloadProtocol: SERVED,
          payload: new TextEncoder().encode('ping'),
          requestId: 3n,
        }),
        kind,
      };
      const wire = encodeFramed(request);
      expect(mux().poll(wire)).toStrictEqual({
        kind: 'Payload',
        frame: request,
        consumed: wire.length,
      });
    }
  });

  it('rejects first-party and unserved protocols', () => {
    const hello = encodeFramed(
      requestFrame({
        payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
        payload: new TextEncoder().encode('hello'),
      }),
    );
    const first = muxError(() => mux().poll(hello));
    expect(first.code).toBe('UNEXPECTED_FIRST_PARTY_FRAME');
    expect(first.payloadProtocol).toBe(0);
    const other = encodeFramed(
      requestFrame({ payloadProtocol: 0x7002, payload: new Uint8Array(8) }),
    );
    const unserved = muxError(() => mux().poll(other));
    expect(unserved.code).toBe('UNSERVED_PAYLOAD_PROTOCOL');
    expect(unserved.payloadProtocol).toBe(0x7002);
  });

  it('a malformed probe is connection-fatal', () => {
    const short = muxError(() => mux().poll(probeWire(new Uint8Array(PROBE_NONCE_BYTES - 1))));
    expect(short.code).toBe('MALFORMED_PROBE');
    expect(short.payloadProtocol).toBe(IDENTITY_PROBE_PAYLOAD_PROTOCOL);
    expect(muxError(() => mux().poll(probeWire(new Uint8Array(PROBE_NONCE_BYTES + 1)))).code).toBe(
      'MALFORMED_PROBE',
    );
    const response = encodeFramed({
      ...requestFrame({
        payloadProtocol: IDENTITY_PROBE_PAYLOAD_PROTOCOL,
        payload: new Uint8Array(32),
      }),
      kind: FrameKind.RESPONSE,
    });
    expect(muxError(() => mux().poll(response)).code).toBe('MALFORMED_PROBE');
    const compressed = encodeFramed(
      requestFrame({
        payloadProtocol: IDENTITY_PROBE_PAYLOAD_PROTOCOL,
        payload: new Uint8Array(32),
        payloadEncoding: PayloadEncoding.ZSTD,
      }),
    );
    expect(muxError(() => mux().poll(compressed)).code).toBe('MALFORMED_PROBE');
  });

  it('reports framing faults as FRAMING with the FramingError as cause', () => {
    const header = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);
    new DataView(header.buffer).setUint32(1, 16 * 1024 * 1024 + 1, true);
    const error = muxError(() => mux().poll(header));
    expect(error.code).toBe('FRAMING');
    expect((error.cause as { code: string }).code).toBe('FRAME_TOO_LARGE');
    const undecodable = new Uint8Array([1, 3, 0, 0, 0, 0x0f, 0, 0]);
    expect(muxError(() => mux().poll(undecodable)).code).toBe('FRAMING');
  });

  it('without a detector, never calls anything legacy that starts with the framing byte', () => {
    const plain = new BackendEndpointMux({ daemon: identity, servedPayloadProtocols: [SERVED] });
    expect(plain.poll(new Uint8Array([1]))).toEqual({ kind: 'NeedMoreBytes' });
    expect(plain.poll(new Uint8Array([0x47, 0x45, 0x54]))).toEqual({ kind: 'Legacy' });
  });
});

/** Drives a mux over a stream delivered in chunks, as a connection would. */
function verdicts(stream: Uint8Array, cuts: number[]): string[] {
  const m = mux();
  const out: string[] = [];
  let buf = new Uint8Array(0);
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  points.push(stream.length);
  let from = 0;
  for (const to of points) {
    const next = new Uint8Array(buf.length + (to - from));
    next.set(buf);
    next.set(stream.subarray(from, to), buf.length);
    buf = next;
    from = to;
    for (;;) {
      let verdict: MuxVerdict;
      try {
        verdict = m.poll(buf);
      } catch (error) {
        out.push(`error:${(error as MuxError).code}`);
        return out;
      }
      if (verdict.kind === 'NeedMoreBytes') break;
      if (verdict.kind === 'Legacy') {
        out.push('legacy');
        return out;
      }
      out.push(verdict.kind === 'Payload' ? `payload:${verdict.frame.requestId}` : 'probe');
      buf = buf.subarray(verdict.consumed);
    }
  }
  return out;
}

describe('BackendEndpointMux properties', () => {
  const arbMessage = fc.oneof(
    fc
      .record({
        id: fc.bigInt({ min: 1n, max: 2n ** 64n - 1n }),
        body: fc.uint8Array({ maxLength: 40 }),
      })
      .map(({ id, body }) =>
        encodeFramed(requestFrame({ payloadProtocol: SERVED, payload: body, requestId: id })),
      ),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((nonce) => probeWire(nonce)),
  );

  it('any chunking of a stream gives the same verdict sequence', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (messages, cuts) => {
          const stream = new Uint8Array(messages.reduce((n, m) => n + m.length, 0));
          let at = 0;
          for (const m of messages) {
            stream.set(m, at);
            at += m.length;
          }
          expect(verdicts(stream, cuts)).toEqual(verdicts(stream, []));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('garbage only ever yields a verdict or a MuxError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const plain = new BackendEndpointMux({
          daemon: identity,
          servedPayloadProtocols: [SERVED],
        });
        for (const candidate of [bytes, new Uint8Array([1, ...bytes])]) {
          try {
            const verdict = plain.poll(candidate);
            expect(['NeedMoreBytes', 'Legacy', 'ProbeAnswered', 'Payload']).toContain(verdict.kind);
          } catch (error) {
            expect(error).toBeInstanceOf(MuxError);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
