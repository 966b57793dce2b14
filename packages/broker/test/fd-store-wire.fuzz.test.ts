// Property tests of the broker's fd store deposit parser (readDeposit) and
// of BackendChannel's fd path, on real seqpacket pairs with real fds:
// random and mutated payloads with random fd counts. Nothing but
// FdStoreError escapes the parser; the channel hands a deposit on or
// refuses it, closes itself only for fds outside one whole EVENT frame, and
// no fd outlives a run.
import { once } from 'node:events';
import { closeFd, FdSocket, memfdCreate, type ReceivedMessage } from '@handoff/fdpass';
import {
  CHANNEL_CAP_FD_STORE,
  encodeFramed,
  FdStoreEntries,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import { openFds, trapUncaught } from '@handoff/testkit';
import { arbMutated } from '@handoff/testkit/mutations';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FD_STORE_NAME,
  FdStoreError,
  fdStoreFrame,
  MAX_FD_STORE_METADATA_BYTES,
  readDeposit,
} from '../src/fd-store-wire.js';
import { BackendChannel } from '../src/handoff/control-channel.js';
import { registrationMessage } from './channel-registration.js';

const NO_TRACE = {
  payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
  requestId: 0n,
  traceparent: '',
  tracestate: '',
};

const arbName = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/),
  fc.constantFrom('', 'a b', 'x'.repeat(65), 'é', 'line/1', 'a\0'),
  fc.string({ maxLength: 70 }),
);
const arbMetadata = fc.oneof(
  fc.uint8Array({ maxLength: 16 }),
  fc
    .constantFrom(MAX_FD_STORE_METADATA_BYTES, MAX_FD_STORE_METADATA_BYTES + 1)
    .map((n) => new Uint8Array(n)),
);

/** The model: what readDeposit must say about these fields and fd count. */
function verdict(names: string[], metadata: Uint8Array[], fdCount: number): string | null {
  if (fdCount > 253 || names.length > 253) return 'TOO_MANY_FDS';
  if (names.length !== fdCount) return 'FD_COUNT_MISMATCH';
  if (metadata.length > names.length) return 'BAD_DEPOSIT';
  const seen = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (!FD_STORE_NAME.test(name)) return 'BAD_FD_NAME';
    if (seen.has(name)) return 'DUPLICATE_FD_NAME';
    seen.add(name);
    if ((metadata[i]?.length ?? 0) > MAX_FD_STORE_METADATA_BYTES) return 'METADATA_TOO_LARGE';
  }
  return null;
}

describe('readDeposit', () => {
  it('throws only FdStoreError on random bytes and fd counts (numRuns 2000)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 512 }),
        fc.integer({ min: 0, max: 300 }),
        (bytes, n) => {
          try {
            const entries = readDeposit(bytes, n);
            expect(entries.length).toBe(n);
            for (const e of entries) expect(FD_STORE_NAME.test(e.name)).toBe(true);
          } catch (error) {
            expect(error).toBeInstanceOf(FdStoreError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('accepts exactly what the model accepts, with the model’s code (numRuns 1000)', () => {
    fc.assert(
      fc.property(
        fc.array(arbName, { maxLength: 8 }),
        fc.array(arbMetadata, { maxLength: 9 }),
        fc.integer({ min: -2, max: 2 }),
        (names, metadata, delta) => {
          const fdCount = Math.max(0, names.length + delta);
          const payload = FdStoreEntries.encode({ names, metadata });
          let code: string | null = null;
          try {
            const entries = readDeposit(payload, fdCount);
            expect(entries.map((e) => e.name)).toEqual(names);
          } catch (error) {
            code = (error as FdStoreError).code;
          }
          // The codec may not round-trip an unpaired surrogate: judge what it decodes to.
          const decoded = FdStoreEntries.decode(payload);
          expect(code).toBe(verdict(decoded.names, decoded.metadata, fdCount));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** A channel registered with the fd store, fed one message with `fdCount` fresh memfds. */
async function feed(message: Uint8Array, fdCount: number) {
  const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
  const channel = new BackendChannel(brokerEnd);
  const seen = { deposits: 0, refused: [] as string[], fds: 0 };
  channel.on('deposit', (_entries: unknown[], fds: number[]) => {
    seen.deposits++;
    seen.fds += fds.length;
    for (const fd of fds) closeFd(fd);
  });
  channel.on('deposit-refused', (error: FdStoreError) => seen.refused.push(error.code));
  daemonEnd.on('message', ({ fds }: ReceivedMessage) => {
    for (const fd of fds) closeFd(fd);
  });
  try {
    const registered = once(channel, 'registered');
    daemonEnd.write(
      registrationMessage({
        namespaceId: 'echo',
        path: '/x',
        channelCapabilities: CHANNEL_CAP_FD_STORE,
      }),
    );
    await registered;
    const fds = Array.from({ length: fdCount }, () => memfdCreate('fuzz'));
    const consumed = once(brokerEnd, 'message');
    try {
      daemonEnd.write(message.length > 0 ? message : new Uint8Array([0]), fds);
    } finally {
      for (const fd of fds) closeFd(fd);
    }
    await consumed;
    return { ...seen, closed: channel.closed };
  } finally {
    // A closed channel lingers for a last deposit until the daemon hangs up.
    const gone = brokerEnd.closed ? Promise.resolve() : once(brokerEnd, 'close');
    daemonEnd.close();
    channel.close();
    await gone;
  }
}

const depositCorpus = {
  one: fdStoreFrame([{ name: 'line:1', metadata: new Uint8Array(0) }]),
  two: fdStoreFrame([
    { name: 'kv-state', metadata: new Uint8Array([1, 2, 3]) },
    { name: 'line:22', metadata: new Uint8Array(0) },
  ]),
  request: encodeFramed(
    requestFrame({ ...NO_TRACE, payload: FdStoreEntries.encode({ names: ['a'], metadata: [] }) }),
  ),
};

function wholeEvent(bytes: Uint8Array): boolean {
  try {
    const decoded = tryDecodeFramed(bytes, { maxFrameBytes: 192 * 1024 });
    return (
      decoded !== null &&
      decoded.consumed === bytes.length &&
      decoded.frame.kind === FrameKind.EVENT &&
      decoded.frame.payloadProtocol === HANDOFF_PAYLOAD_PROTOCOL
    );
  } catch {
    return false;
  }
}

describe('BackendChannel deposits (real seqpacket pairs, real fds)', () => {
  const escaped = trapUncaught();

  it('hands a valid deposit on with its fds, and keeps the channel', async () => {
    const result = await feed(depositCorpus.two, 2);
    expect(result).toMatchObject({ deposits: 1, fds: 2, refused: [], closed: false });
  });

  it('refuses a count mismatch (fds closed) and keeps the channel; fds on a REQUEST close it', async () => {
    const before = openFds();
    expect(await feed(depositCorpus.two, 3)).toMatchObject({
      deposits: 0,
      refused: ['FD_COUNT_MISMATCH'],
      closed: false,
    });
    expect(await feed(depositCorpus.request, 1)).toMatchObject({
      deposits: 0,
      refused: ['FDS_WITHOUT_DEPOSIT'],
      closed: true,
    });
    expect(openFds()).toBe(before);
  });

  it('a channel closed by the broker still takes the deposit the daemon sends as it stops', async () => {
    const before = openFds();
    const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
    const channel = new BackendChannel(brokerEnd);
    const registered = once(channel, 'registered');
    daemonEnd.write(
      registrationMessage({
        namespaceId: 'echo',
        path: '/x',
        channelCapabilities: CHANNEL_CAP_FD_STORE,
      }),
    );
    await registered;
    const deposited = once(channel, 'deposit') as Promise<[unknown[], number[]]>;
    channel.close('process exited');
    expect(channel.closed).toBe(true);
    const fd = memfdCreate('last');
    daemonEnd.write(depositCorpus.one, [fd]);
    closeFd(fd);
    const [entries, fds] = await deposited;
    expect(entries).toHaveLength(1);
    for (const got of fds) closeFd(got);
    // The daemon hangs up: the lingering end closes with it.
    const gone = once(brokerEnd, 'close');
    daemonEnd.close();
    await gone;
    expect(openFds()).toBe(before);
  });

  it('no throw escapes, the channel closes only for fds outside one whole EVENT frame, no fd leaks (numRuns 150)', async () => {
    const before = openFds();
    await fc.assert(
      fc.asyncProperty(
        arbMutated(depositCorpus, 4096),
        fc.integer({ min: 0, max: 4 }),
        async ({ bytes }, n) => {
          const result = await feed(bytes, n);
          if (n > 0) {
            // With fds, every run ends one way: handed on, refused, or closed
            // (exactly when the message is not one whole handoff EVENT frame).
            expect(result.deposits + result.refused.length).toBe(1);
            expect(result.closed).toBe(!wholeEvent(bytes));
          }
          if (result.deposits === 1) expect(result.fds).toBe(n);
          expect(escaped).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
    expect(openFds()).toBe(before);
  }, 60_000);
});
