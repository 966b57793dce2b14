import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AdminRequest,
  AdminVerb,
  DaemonProcess,
  Endpoint,
  ErrorCode,
  Frame,
  FrameKind,
  FramingError,
  HandoffOffer,
  Hello,
  HelloReply,
  Negotiated,
  Refused,
} from '../src/index.js';
import { arbFrame, arbHello, arbU64 } from './arbitraries.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('message values', () => {
  it('create() fills every field with its default; Frame defaults envelopeVersion to 1', () => {
    expect(Frame.create()).toStrictEqual({
      envelopeVersion: 1,
      kind: FrameKind.REQUEST,
      payloadProtocol: 0,
      payload: new Uint8Array(0),
      requestId: 0n,
      payloadEncoding: 0,
      deadlineUnixMs: 0n,
      traceparent: '',
      tracestate: '',
    });
    expect(Hello.create({ serviceName: 'x' }).serviceName).toBe('x');
    expect(HelloReply.create().result).toStrictEqual({ case: undefined });
    expect(DaemonProcess.create().idleTimeoutSecs).toBeUndefined();
  });

  it('exports numeric enums with the wire values', () => {
    expect(FrameKind.RESPONSE).toBe(1);
    expect(FrameKind.CANCEL).toBe(3);
    expect(ErrorCode.FD_PRESSURE).toBe(9);
    expect(AdminVerb.SHUTDOWN).toBe(21);
    expect(AdminVerb.CACHE_SESSION).toBe(1002);
  });

  it('omits defaults: an all-default message encodes to zero bytes', () => {
    for (const type of [Hello, Negotiated, Refused, HandoffOffer, Endpoint, AdminRequest]) {
      expect(type.encode(type.create())).toHaveLength(0);
    }
    expect(hex(Frame.encode(Frame.create()))).toBe('0801');
  });

  it('accepts partial messages: missing fields are defaults', () => {
    expect(hex(Frame.encode({ requestId: 5n }))).toBe('2805');
  });

  it('round-trips u64 fields exactly over the whole range', () => {
    const edges = [
      0n,
      1n,
      127n,
      128n,
      2n ** 32n - 1n,
      2n ** 32n,
      2n ** 53n + 1n,
      2n ** 63n,
      2n ** 64n - 1n,
    ];
    for (const value of edges) {
      const frame = Frame.decode(Frame.encode({ requestId: value, deadlineUnixMs: value }));
      expect(frame.requestId).toBe(value);
      expect(frame.deadlineUnixMs).toBe(value);
    }
    fc.assert(
      fc.property(arbU64, (value) => {
        expect(Frame.decode(Frame.encode({ requestId: value })).requestId).toBe(value);
      }),
    );
  });

  it('rejects u64 values outside 0…2^64−1 instead of wrapping them', () => {
    expect(() => Frame.encode({ requestId: -1n })).toThrow(RangeError);
    expect(() => Frame.encode({ requestId: 2n ** 64n })).toThrow(RangeError);
  });

  it('rejects a varint longer than 10 bytes', () => {
    const bad = new Uint8Array([0x28, ...new Array(10).fill(0xff), 0x01]);
    expect(() => Frame.decode(bad)).toThrow(FramingError);
  });

  it('tolerates unknown fields of every wire type', () => {
    const known = Frame.encode({ kind: FrameKind.EVENT, requestId: 7n });
    const unknown = new Uint8Array([
      0x78,
      0x05, // field 15 varint (reserved number)
      0xba,
      0x3e,
      0x02,
      0x61,
      0x62, // field 999 length-delimited "ab"
      0x85,
      0x01,
      0x01,
      0x02,
      0x03,
      0x04, // field 16 fixed32
      0x81,
      0x01,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8, // field 16 fixed64
    ]);
    const frame = Frame.decode(new Uint8Array([...unknown, ...known, ...unknown]));
    expect(frame.kind).toBe(FrameKind.EVENT);
    expect(frame.requestId).toBe(7n);
  });

  it('reads a probe identity with the legacy SHA-256 trailer (field 3) appended', () => {
    const identity = DaemonProcess.create({
      pid: 42,
      exePath: '/usr/bin/node',
      ipcEndpoint: { namespaceId: '', path: '/tmp/x.sock' },
      exeHashAlgorithm: 'blake3',
      exeHash: new Uint8Array(32).fill(7),
    });
    const trailer = new Uint8Array([0x1a, 0x20, ...new Uint8Array(32).fill(9)]);
    const wire = new Uint8Array([...DaemonProcess.encode(identity), ...trailer]);
    expect(DaemonProcess.decode(wire)).toStrictEqual(identity);
  });

  it('represents HelloReply.result as a discriminated union', () => {
    const negotiated = Negotiated.create({ backendPipe: '/p', connectionId: 3n });
    const reply = HelloReply.decode(
      HelloReply.encode({ result: { case: 'negotiated', value: negotiated } }),
    );
    expect(reply.result).toStrictEqual({ case: 'negotiated', value: negotiated });
    expect(HelloReply.decode(new Uint8Array(0)).result.case).toBeUndefined();
  });

  it('keeps a "__proto__" map key as data, not as a prototype', () => {
    const refused = Refused.create({ details: JSON.parse('{"__proto__":"x","a":"b"}') });
    const decoded = Refused.decode(Refused.encode(refused));
    expect(Object.getPrototypeOf(decoded.details)).toBe(Object.prototype);
    expect(Object.keys(decoded.details).sort()).toEqual(['__proto__', 'a']);
  });

  it('returns payloads as views into the decoded buffer', () => {
    const wire = Frame.encode({ payload: new Uint8Array([1, 2, 3]) });
    const frame = Frame.decode(wire);
    expect(frame.payload.buffer).toBe(wire.buffer);
  });

  it('throws FramingError DECODE with the type name on malformed bytes', () => {
    const cases = [
      new Uint8Array([0x22, 0x05, 0x01]), // length past the end
      new Uint8Array([0x0f]), // wire type 7
      new Uint8Array([0x0b]), // unterminated group
      new Uint8Array([0x28]), // truncated varint
      new Uint8Array([0x42, 0x02, 0xc3, 0x28]), // invalid UTF-8 in a string
    ];
    for (const bytes of cases) {
      try {
        Frame.decode(bytes);
        expect.unreachable(`decoded ${hex(bytes)}`);
      } catch (error) {
        expect(error).toBeInstanceOf(FramingError);
        expect((error as FramingError).code).toBe('DECODE');
        expect((error as FramingError).typeName).toBe('running_process.broker.v1.Frame');
      }
    }
  });

  it('property: random Frames and Hellos round-trip exactly', () => {
    fc.assert(
      fc.property(arbFrame, (frame) => {
        expect(Frame.decode(Frame.encode(frame))).toStrictEqual(frame);
      }),
    );
    fc.assert(
      fc.property(arbHello, (hello) => {
        expect(Hello.decode(Hello.encode(hello))).toStrictEqual(hello);
      }),
    );
  });

  it('property: random bytes decode to a message or throw FramingError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        for (const type of [Frame, Hello, HelloReply, DaemonProcess, HandoffOffer]) {
          try {
            type.decode(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(FramingError);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('bigint reader and writer for your own generated code', () => {
  it('round-trip a uint64 above 2^53 exactly through protobufjs Reader/Writer calls', async () => {
    const { bigIntReader, bigIntWriter } = await import('../src/index.js');
    const value = 0xffff_ffff_ffff_fff1n;
    const bytes = bigIntWriter()
      .uint32(8)
      .uint64(value as never)
      .finish();
    const reader = bigIntReader(bytes);
    expect(reader.uint32()).toBe(8);
    expect(reader.uint64() as unknown).toBe(value);
    expect(() => bigIntWriter().uint64(-1n as never)).toThrow(RangeError);
  });
});
