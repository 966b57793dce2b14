// The master↔worker codec: golden bytes written out by hand (never derived
// from the encoder under test), every rejection typed, and property tests
// that feed it hostile bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DISPATCH_WIRE_VERSION,
  type DispatchEndpoint,
  DispatchWireError,
  DropReason,
  decodeMasterMessage,
  decodeWorkerMessage,
  dispatchMessageLength,
  dispatchRecordId,
  dispatchRecordListener,
  encodeHello,
  encodeReady,
  encodeReport,
  encodeStop,
  MAX_CONNECTION_ID,
  MAX_FDS_PER_DISPATCH,
  MAX_REPORT_ENTRIES,
  putDispatchHeader,
  putDispatchRecord,
  ReportKind,
  type WorkerHello,
} from '../src/dispatch/wire.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replaceAll(/\s+/g, ''), 'hex'));

function dispatch(records: [id: number, listener: number][]): Uint8Array {
  const out = new Uint8Array(dispatchMessageLength(records.length));
  putDispatchHeader(out, records.length);
  for (const [i, [id, l]] of records.entries()) putDispatchRecord(out, i, id, l);
  return out;
}

const hello: WorkerHello = {
  slot: 1,
  generation: 2,
  drainDeadlineMs: 5000,
  endpoints: [
    {
      index: 0,
      transport: 'tcp',
      family: 'inet',
      address: '127.0.0.1',
      port: 8080,
      noDelay: false,
    },
    { index: 1, transport: 'unix', family: 'unix', path: '/run/app.sock' },
  ],
};

function wireError(fn: () => unknown): DispatchWireError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DispatchWireError);
    return err as DispatchWireError;
  }
  throw new Error('expected a DispatchWireError');
}

describe('golden bytes', () => {
  it('DISPATCH: type, version, u16 count, then 8-byte records (u32 id low, u16 id high, listener, 0)', () => {
    const bytes = dispatch([
      [1, 0],
      [0x1234_5678_9abc, 3],
    ]);
    expect(bytes).toEqual(
      hex(`02 01 0200
           01000000 0000 00 00
           bc9a7856 3412 03 00`),
    );
    const m = decodeMasterMessage(bytes, 2);
    expect(m).toMatchObject({ type: 'dispatch', count: 2 });
    if (m.type !== 'dispatch') throw new Error('unreachable');
    expect(dispatchRecordId(m.data, 1)).toBe(0x1234_5678_9abc);
    expect(dispatchRecordListener(m.data, 1)).toBe(3);
  });

  it('STOP carries a u32 deadline; READY a u32 pid', () => {
    expect(encodeStop(5000)).toEqual(hex('03 01 0000 88130000'));
    expect(encodeReady(0x01020304)).toEqual(hex('81 01 0000 04030201'));
    expect(decodeMasterMessage(hex('03 01 0000 88130000'), 0)).toEqual({
      type: 'stop',
      deadlineMs: 5000,
    });
    expect(decodeWorkerMessage(hex('81 01 0000 04030201'), 0)).toEqual({
      type: 'ready',
      pid: 0x01020304,
    });
  });

  it('REPORT: u16 entry count, 8-byte entries (kind, reason, 0, u32 count)', () => {
    const bytes = hex(`82 01 0300
                       01 00 0000 02000000
                       02 01 0000 01000000
                       03 00 0000 ffffffff`);
    expect(
      encodeReport([
        { kind: ReportKind.ADOPTED, reason: DropReason.NONE, count: 2 },
        { kind: ReportKind.DROPPED, reason: DropReason.CONTROL_TRUNCATED, count: 1 },
        { kind: ReportKind.CLOSED, reason: DropReason.NONE, count: 0xffffffff },
      ]),
    ).toEqual(bytes);
    expect(decodeWorkerMessage(bytes, 0)).toEqual({
      type: 'report',
      entries: [
        { kind: 1, reason: 0, count: 2 },
        { kind: 2, reason: 1, count: 1 },
        { kind: 3, reason: 0, count: 0xffffffff },
      ],
    });
  });

  it('HELLO: u16 JSON length, then the JSON', () => {
    const json = '{"slot":0,"generation":0,"drainDeadlineMs":1,"endpoints":[]}';
    const bytes = Uint8Array.from([0x01, 0x01, json.length, 0, ...Buffer.from(json)]);
    expect(decodeMasterMessage(bytes, 0)).toEqual({
      type: 'hello',
      hello: { slot: 0, generation: 0, drainDeadlineMs: 1, endpoints: [] },
    });
    expect(decodeMasterMessage(encodeHello(hello), 0)).toEqual({ type: 'hello', hello });
  });

  it('HELLO: a TCP endpoint says whether its listener has TCP_NODELAY; absent means it has not', () => {
    const withNoDelay: WorkerHello = {
      ...hello,
      endpoints: [
        { ...(hello.endpoints[0] as DispatchEndpoint), noDelay: true } as DispatchEndpoint,
      ],
    };
    expect(decodeMasterMessage(encodeHello(withNoDelay), 0)).toEqual({
      type: 'hello',
      hello: withNoDelay,
    });
    // A master that predates the field (or the C floor of the benchmark) leaves it out.
    const json =
      '{"slot":0,"generation":0,"drainDeadlineMs":1,"endpoints":[{"index":0,"transport":"tcp","family":"inet","address":"127.0.0.1","port":80}]}';
    const bytes = Uint8Array.from([0x01, 0x01, json.length, 0, ...Buffer.from(json)]);
    const m = decodeMasterMessage(bytes, 0);
    expect(m.type === 'hello' && m.hello.endpoints[0]).toMatchObject({ noDelay: false });
  });
});

describe('rejections are typed', () => {
  it('short, unknown, or of another version', () => {
    expect(wireError(() => decodeMasterMessage(hex('02 01 01'), 0)).code).toBe('TRUNCATED');
    expect(wireError(() => decodeWorkerMessage(new Uint8Array(0), 0)).code).toBe('TRUNCATED');
    expect(wireError(() => decodeMasterMessage(hex('7f 01 0000'), 0)).code).toBe('UNKNOWN_TYPE');
    expect(wireError(() => decodeWorkerMessage(hex('02 01 0000'), 0)).code).toBe('UNKNOWN_TYPE');
    expect(wireError(() => decodeMasterMessage(hex('03 02 0000 00000000'), 0)).code).toBe(
      'UNSUPPORTED_VERSION',
    );
  });

  it('a dispatch whose fds do not match its records, or whose length lies', () => {
    const two = dispatch([
      [1, 0],
      [2, 0],
    ]);
    expect(wireError(() => decodeMasterMessage(two, 1)).code).toBe('FD_COUNT');
    expect(wireError(() => decodeMasterMessage(two, 3)).code).toBe('FD_COUNT');
    expect(wireError(() => decodeMasterMessage(two.subarray(0, 12), 2)).code).toBe('BAD_LENGTH');
    expect(wireError(() => decodeMasterMessage(hex('02 01 0000'), 0)).code).toBe('BAD_LENGTH');
    // 254 records announced: refused from the header, before anything else.
    expect(wireError(() => decodeMasterMessage(hex('02 01 fe00'), 254)).code).toBe('BAD_LENGTH');
    expect(() => putDispatchHeader(new Uint8Array(4096), MAX_FDS_PER_DISPATCH + 1)).toThrow(
      RangeError,
    );
  });

  it('fds on a message that never carries any', () => {
    expect(wireError(() => decodeMasterMessage(encodeStop(1), 1)).code).toBe('FD_COUNT');
    expect(wireError(() => decodeMasterMessage(encodeHello(hello), 1)).code).toBe('FD_COUNT');
    expect(wireError(() => decodeWorkerMessage(encodeReady(1), 1)).code).toBe('FD_COUNT');
  });

  it('a hello that is not the expected JSON', () => {
    const withJson = (s: string) => {
      const b = Buffer.from(s);
      return Uint8Array.from([0x01, 0x01, b.length & 0xff, b.length >> 8, ...b]);
    };
    const bad = [
      'not json',
      '[]',
      '{"slot":-1,"generation":0,"drainDeadlineMs":0,"endpoints":[]}',
      '{"slot":0,"generation":0.5,"drainDeadlineMs":0,"endpoints":[]}',
      '{"slot":0,"generation":0,"drainDeadlineMs":0,"endpoints":{}}',
      '{"slot":0,"generation":0,"drainDeadlineMs":0,"endpoints":[{"index":1}]}',
      '{"slot":0,"generation":0,"drainDeadlineMs":0,"endpoints":[{"index":0,"transport":"udp"}]}',
      '{"slot":0,"generation":0,"drainDeadlineMs":0,"endpoints":[{"index":0,"transport":"tcp","family":"inet","address":"x","port":70000}]}',
      '{"slot":0,"generation":0,"drainDeadlineMs":0,"endpoints":[{"index":0,"transport":"unix","family":"inet","path":"/x"}]}',
      '{"slot":0,"generation":0,"drainDeadlineMs":0,"endpoints":[{"index":0,"transport":"tcp","family":"inet","address":"x","port":1,"noDelay":1}]}',
    ];
    for (const s of bad)
      expect(wireError(() => decodeMasterMessage(withJson(s), 0)).code).toBe('BAD_HELLO');
    const notUtf8 = Uint8Array.from([0x01, 0x01, 2, 0, 0xc3, 0x28]);
    expect(wireError(() => decodeMasterMessage(notUtf8, 0)).code).toBe('BAD_HELLO');
    // The length field is checked before the body is looked at.
    expect(wireError(() => decodeMasterMessage(hex('01 01 ffff 7b7d'), 0)).code).toBe('TOO_LARGE');
    expect(wireError(() => decodeMasterMessage(hex('01 01 0500 7b7d'), 0)).code).toBe('BAD_LENGTH');
  });

  it('a report with unknown kinds or reasons, or too many entries', () => {
    expect(
      wireError(() => decodeWorkerMessage(hex('82 01 0100 09 00 0000 01000000'), 0)).code,
    ).toBe('BAD_REPORT');
    expect(
      wireError(() => decodeWorkerMessage(hex('82 01 0100 01 63 0000 01000000'), 0)).code,
    ).toBe('BAD_REPORT');
    expect(wireError(() => decodeWorkerMessage(hex('82 01 0101'), 0)).code).toBe('TOO_LARGE');
    expect(
      wireError(() => decodeWorkerMessage(hex('82 01 0200 01 00 0000 01000000'), 0)).code,
    ).toBe('BAD_LENGTH');
    const many = Array.from({ length: MAX_REPORT_ENTRIES + 1 }, () => ({
      kind: ReportKind.CLOSED,
      reason: DropReason.NONE,
      count: 1,
    }));
    expect(wireError(() => encodeReport(many)).code).toBe('TOO_LARGE');
  });
});

describe('properties', () => {
  // What a decode that did not throw may return, from either side of the wire.
  const MESSAGE_TYPES = ['hello', 'dispatch', 'stop', 'ready', 'report'];

  it('any bytes with any fd count decode or throw DispatchWireError — nothing else', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 4200 }),
        fc.integer({ min: 0, max: 300 }),
        (bytes, fds) => {
          for (const decode of [decodeMasterMessage, decodeWorkerMessage]) {
            try {
              expect(MESSAGE_TYPES).toContain(decode(bytes, fds).type);
            } catch (err) {
              if (!(err instanceof DispatchWireError)) throw err;
              expect(err.code).toMatch(/^[A-Z_]+$/);
            }
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('valid headers with hostile bodies are still only DispatchWireErrors', () => {
    const header = fc.tuple(
      fc.constantFrom(0x01, 0x02, 0x03, 0x81, 0x82),
      fc.constant(DISPATCH_WIRE_VERSION),
      fc.integer({ min: 0, max: 0xffff }),
    );
    fc.assert(
      fc.property(
        header,
        fc.uint8Array({ maxLength: 2100 }),
        fc.nat(260),
        ([t, v, f], body, fds) => {
          const bytes = Uint8Array.from([t, v, f & 0xff, f >> 8, ...body]);
          for (const decode of [decodeMasterMessage, decodeWorkerMessage]) {
            try {
              expect(MESSAGE_TYPES).toContain(decode(bytes, fds).type);
            } catch (err) {
              if (!(err instanceof DispatchWireError)) throw err;
              expect(err.code).toMatch(/^[A-Z_]+$/);
            }
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('dispatch records round-trip for every id up to 2^48 - 1 and listener index', () => {
    const record = fc.tuple(fc.integer({ min: 0, max: MAX_CONNECTION_ID }), fc.nat(255));
    fc.assert(
      fc.property(
        fc.array(record, { minLength: 1, maxLength: MAX_FDS_PER_DISPATCH }),
        (records) => {
          const m = decodeMasterMessage(dispatch(records), records.length);
          if (m.type !== 'dispatch') throw new Error('not a dispatch');
          expect(m.count).toBe(records.length);
          records.forEach(([id, l], i) => {
            expect(dispatchRecordId(m.data, i)).toBe(id);
            expect(dispatchRecordListener(m.data, i)).toBe(l);
          });
        },
      ),
    );
  });

  it('reports round-trip', () => {
    const entry = fc.record({
      kind: fc.constantFrom(...Object.values(ReportKind)),
      reason: fc.constantFrom(...Object.values(DropReason)),
      count: fc.integer({ min: 0, max: 0xffffffff }),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: MAX_REPORT_ENTRIES }), (entries) => {
        expect(decodeWorkerMessage(encodeReport(entries), 0)).toEqual({ type: 'report', entries });
      }),
    );
  });
});
