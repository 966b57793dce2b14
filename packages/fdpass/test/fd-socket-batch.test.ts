// FdSocket.writeBatch: many messages, one sendmmsg per 64 on seqpacket, the
// same results as a write() per message; checks before any send, the rest
// of a batch queued under EAGAIN, a refused message, and fd ownership.
import { closeSync, openSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  closeFd,
  closeFds,
  duplicateFd,
  type FdPassError,
  type OutgoingMessage,
  type ReceivedMessage,
} from '../src/index.js';
import { loadNative } from '../src/native-loader.js';
import { checkFdsAfterEachTest, cleanup, pair } from './fd-socket-pairs.js';
import { isOpen, nextEvent, sameFile } from './helpers.js';

checkFdsAfterEachTest();

/** Opens `n` files the test closes afterwards. */
function files(n: number, path = '/dev/null'): number[] {
  const fds = Array.from({ length: n }, () => openSync(path, 'r'));
  cleanup.push(() => {
    for (const fd of fds) closeSync(fd);
  });
  return fds;
}

function seqMessage(i: number, size = 8): Uint8Array {
  const data = Buffer.alloc(size);
  data.writeUInt32BE(i, 0);
  return data;
}

/** Reads messages until `count` fds arrived and `bytes` bytes; closes every fd after checking it. */
function receiveAll(
  socket: ReturnType<typeof pair>[1],
  bytes: number,
  check: (fds: number[], data: Buffer) => void = () => {},
): Promise<{ data: Buffer; fdCount: number; messages: number }> {
  const chunks: Buffer[] = [];
  let got = 0;
  let fdCount = 0;
  let messages = 0;
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('message', (m: ReceivedMessage) => {
      try {
        check(m.fds, m.data);
      } finally {
        closeFds(m.fds);
      }
      chunks.push(Buffer.from(m.data));
      got += m.data.length;
      fdCount += m.fds.length;
      messages++;
      if (got === bytes) resolve({ data: Buffer.concat(chunks), fdCount, messages });
    });
  });
}

describe.each(['seqpacket', 'stream'] as const)('FdSocket.writeBatch (%s)', (kind) => {
  it('sends every message in order with its own fds, across several sendmmsg calls', async () => {
    const [a, b] = pair(kind);
    const devNull = files(1)[0] as number;
    const exe = files(1, '/proc/self/exe')[0] as number;
    // 200 messages: more than three batches of 64; 0, 1, 2 or 3 fds each.
    const batch: OutgoingMessage[] = Array.from({ length: 200 }, (_, i) => ({
      data: seqMessage(i),
      fds: [devNull, exe, devNull].slice(0, i % 4),
    }));
    const received: number[] = [];
    const done = receiveAll(b, 200 * 8, (fds, data) => {
      if (kind === 'seqpacket') {
        const i = data.readUInt32BE(0);
        received.push(i);
        expect(fds).toHaveLength(i % 4);
        fds.forEach((fd, k) => {
          expect(sameFile(fd, k === 1 ? exe : devNull)).toBe(true);
        });
      }
    });
    expect(a.writeBatch(batch)).toBe(true);
    const { data, fdCount, messages } = await done;
    expect(fdCount).toBe(batch.reduce((n, m) => n + (m.fds?.length ?? 0), 0));
    for (let i = 0; i < 200; i++) expect(data.readUInt32BE(i * 8)).toBe(i);
    if (kind === 'seqpacket') {
      expect(messages).toBe(200);
      expect(received).toEqual(Array.from({ length: 200 }, (_, i) => i));
    }
  });

  it('queues the rest of a batch under EAGAIN with duplicated fds, then drains in order', async () => {
    const [a, b] = pair(kind);
    const own = openSync('/dev/null', 'r');
    const reference = files(1)[0] as number;
    const batch = Array.from({ length: 5000 }, (_, i) => ({
      data: seqMessage(i, 1000),
      fds: [own],
    }));
    expect(a.writeBatch(batch)).toBe(false);
    expect(a.writableLength).toBeGreaterThan(0);
    expect(a.writableFds).toBeGreaterThan(0);
    // Queued fds are the socket's duplicates: the caller's copy may go now.
    closeSync(own);
    const drained = nextEvent(a, 'drain');
    const { data, fdCount } = await receiveAll(b, 5000 * 1000, (fds) => {
      for (const fd of fds) expect(sameFile(fd, reference)).toBe(true);
    });
    await drained;
    expect(fdCount).toBe(5000);
    for (let i = 0; i < 5000; i++) expect(data.readUInt32BE(i * 1000)).toBe(i);
    expect(a.writableFds).toBe(0);
  });

  it('checks every message before sending any', async () => {
    const [a, b] = pair(kind);
    const file = files(1)[0] as number;
    let arrived = 0;
    b.on('message', (m: ReceivedMessage) => {
      arrived++;
      closeFds(m.fds);
    });
    const good = { data: seqMessage(0), fds: [file] };
    const cases: [unknown[], RegExp | object][] = [
      [[good, { data: 'text' }], /messages\[1\]\.data/],
      [[good, good, { data: seqMessage(2), fds: [file, -1] }], /messages\[2\]\.fds/],
      [[good, null], /messages\[1\]/],
      [
        [good, { data: seqMessage(1), fds: new Array(254).fill(file) }],
        expect.objectContaining({ code: 'ERR_TOO_MANY_FDS' }),
      ],
    ];
    if (kind === 'stream') {
      cases.push([
        [good, { data: new Uint8Array(0), fds: [file] }],
        expect.objectContaining({ code: 'ERR_FDS_NEED_DATA' }),
      ]);
    }
    for (const [messages, error] of cases) {
      expect(() => a.writeBatch(messages as OutgoingMessage[])).toThrow(error as RegExp);
    }
    expect(() => a.writeBatch('nope' as unknown as OutgoingMessage[])).toThrow(/Usage/);
    // Nothing was sent: a message written now is the first to arrive.
    const first = nextEvent<ReceivedMessage>(b, 'message');
    expect(a.writeBatch([{ data: seqMessage(99) }])).toBe(true);
    expect((await first).data.readUInt32BE(0)).toBe(99);
    expect(arrived).toBe(1);
    expect(a.writeBatch([])).toBe(true);
    a.end();
    expect(() => a.writeBatch([good])).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }),
    );
  });

  it('with transfer, owns every fd: closed once sent, and closed when the batch is refused', async () => {
    const [a, b] = pair(kind);
    const sent = Array.from({ length: 70 }, () => openSync('/dev/null', 'r'));
    const done = receiveAll(b, 70 * 8);
    expect(
      a.writeBatch(
        sent.map((fd, i) => ({ data: seqMessage(i), fds: [fd] })),
        { transfer: true },
      ),
    ).toBe(true);
    for (const fd of sent) expect(isOpen(fd)).toBe(false);
    expect((await done).fdCount).toBe(70);

    const refused = [openSync('/dev/null', 'r'), openSync('/dev/null', 'r')];
    const tooMany = new Array(254).fill(refused[1]);
    expect(() =>
      a.writeBatch(
        [
          { data: seqMessage(0), fds: [refused[0] as number] },
          { data: seqMessage(1), fds: tooMany },
        ],
        { transfer: true },
      ),
    ).toThrow(expect.objectContaining({ code: 'ERR_TOO_MANY_FDS' }));
    for (const fd of refused) expect(isOpen(fd)).toBe(false);
  });

  it('a peer gone mid-batch fails the socket once; with transfer every fd is closed', async () => {
    const [a, b] = pair(kind);
    b.close();
    const failed = nextEvent<FdPassError>(a, 'error');
    const fds = Array.from({ length: 5 }, () => openSync('/dev/null', 'r'));
    expect(
      a.writeBatch(
        fds.map((fd, i) => ({ data: seqMessage(i), fds: [fd] })),
        { transfer: true },
      ),
    ).toBe(false);
    expect((await failed).code).toMatch(/EPIPE|ECONNRESET/);
    for (const fd of fds) expect(isOpen(fd)).toBe(false);
    await vi.waitFor(() => expect(a.closed).toBe(true));
  });
});

describe('FdSocket.writeBatch (seqpacket): any batch arrives as sent', () => {
  it('random sizes and fd counts, split across sendmmsg calls and the queue, arrive in order', async () => {
    const [a, b] = pair('seqpacket', { highWaterMessages: 4 });
    const [devNull, exe] = [files(1)[0] as number, files(1, '/proc/self/exe')[0] as number];
    const inbox: ReceivedMessage[] = [];
    let wake: (() => void) | undefined;
    b.on('message', (m: ReceivedMessage) => {
      inbox.push({ data: Buffer.from(m.data), fds: m.fds });
      wake?.();
    });
    const message = fc.record({
      data: fc.uint8Array({ minLength: 0, maxLength: 70_000 }),
      fdKinds: fc.array(fc.boolean(), { maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(message, { minLength: 1, maxLength: 150 }),
        fc.boolean(),
        async (spec, twice) => {
          const batch = spec.map(({ data, fdKinds }) => ({
            data,
            fds: fdKinds.map((isExe) => (isExe ? exe : devNull)),
          }));
          // A second batch while the first may still be queued: it must queue behind it.
          a.writeBatch(batch);
          if (twice) a.writeBatch(batch);
          const expected = twice ? [...batch, ...batch] : batch;
          while (inbox.length < expected.length) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
          const got = inbox.splice(0);
          try {
            expect(got).toHaveLength(expected.length);
            got.forEach((m, i) => {
              const want = expected[i] as (typeof batch)[number];
              expect(Buffer.compare(m.data, Buffer.from(want.data))).toBe(0);
              expect(m.fds).toHaveLength(want.fds.length);
              m.fds.forEach((fd, k) => {
                expect(sameFile(fd, want.fds[k] as number)).toBe(true);
              });
            });
          } finally {
            for (const m of got) closeFds(m.fds);
          }
        },
      ),
      { numRuns: 60 },
    );
    expect(a.writableFds).toBe(0);
  });
});

describe('FdSocket.writeBatch (seqpacket): a message the kernel refuses', () => {
  it('throws its errno with messagesWritten; earlier messages arrive, later ones are not written', async () => {
    const [a, b] = pair('seqpacket');
    const arrived: number[] = [];
    b.on('message', (m: ReceivedMessage) => {
      closeFds(m.fds);
      arrived.push(m.data.readUInt32BE(0));
    });
    // Larger than the socket's send buffer: EMSGSIZE for that one message.
    const huge = seqMessage(2, 4 << 20);
    const later = [openSync('/dev/null', 'r'), openSync('/dev/null', 'r')];
    let thrown: unknown;
    try {
      a.writeBatch(
        [
          { data: seqMessage(0) },
          { data: seqMessage(1) },
          { data: huge, fds: [later[0] as number] },
          { data: seqMessage(3), fds: [later[1] as number] },
        ],
        { transfer: true },
      );
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'EMSGSIZE', messagesWritten: 2 });
    for (const fd of later) expect(isOpen(fd)).toBe(false);
    // The socket carries on.
    expect(a.writeBatch([{ data: seqMessage(4) }])).toBe(true);
    await vi.waitFor(() => expect(arrived).toEqual([0, 1, 4]));
  });

  it('without transfer, the caller keeps the fds of the refused and later messages', () => {
    const [a] = pair('seqpacket');
    const [mine] = files(1) as [number];
    expect(() =>
      a.writeBatch([
        { data: seqMessage(0, 4 << 20), fds: [mine] },
        { data: seqMessage(1), fds: [mine] },
      ]),
    ).toThrow(expect.objectContaining({ code: 'EMSGSIZE', messagesWritten: 0 }));
    expect(isOpen(mine)).toBe(true);
  });
});

describe('the addon: sendMany', () => {
  it('rejects a layout that does not fit its data or fds, before any syscall', () => {
    const native = loadNative();
    const [a, b] = pair('seqpacket');
    const fd = duplicateFd(a.fd);
    cleanup.push(() => closeFd(fd));
    const data = new Uint8Array(16);
    const none = new Int32Array(0);
    const bad: [Uint8Array, Int32Array, Int32Array, number][] = [
      [data, Int32Array.of(17, 0), none, 1], // more bytes than data holds
      [data, Int32Array.of(8, 1), none, 1], // an fd the list does not hold
      [data, Int32Array.of(8, 0), none, 2], // layout shorter than count
      [data, Int32Array.of(8, 254), new Int32Array(254), 1], // over SCM_MAX_FD
      [data, Int32Array.of(8, 1), Int32Array.of(-1), 1], // a negative fd
      [data, Int32Array.of(-1, 0), none, 1],
      [data, new Int32Array(130), none, 65], // over 64 per call
      [data, Int32Array.of(8, 0), none, 0],
    ];
    for (const [d, layout, fds, count] of bad) {
      expect(() => native.sendMany(fd, d, layout, fds, count)).toThrow(/Usage: sendMany/);
    }
    let arrived = 0;
    b.on('message', () => {
      arrived++;
    });
    expect(native.sendMany(fd, data, Int32Array.of(8, 0, 8, 0), none, 2)).toBe(2);
    return vi.waitFor(() => expect(arrived).toBe(2));
  });
});
