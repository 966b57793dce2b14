// BrokerAttachment's fd store against a broker end made of a real seqpacket
// listener: the registration asks for the store only when told to,
// storeFds sends the names with the fds in one message, a delivery comes
// out as 'fds' (or is closed with no listener), and a delivery whose names
// do not match its fds is a typed fault with every fd closed.
import { once } from 'node:events';
import { closeFd, FdServer, type FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import {
  CHANNEL_CAP_FD_STORE,
  ChannelRegistration,
  encodeFramed,
  eventFrame,
  FdStoreEntries,
  FrameDecoder,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
} from '@handoff/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerAttachment, FdStoreClientError, type StoredFdEntry } from '../src/index.js';
import { fdText, isOpenFd, memfdWith, openFds, tempDir } from './harness.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const NO_TRACE = {
  payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
  requestId: 0n,
  traceparent: '',
  tracestate: '',
};

const memfd = (text: string) => memfdWith(text, 'sdk-fd-store');

/** A broker's control socket, an attachment to it, and the broker's end of the channel. */
async function attached(fdStore: boolean) {
  const dir = tempDir('fd-store-client');
  cleanups.push(() => dir.remove());
  const server = await FdServer.listen(dir.path('control.sock'), { kind: 'seqpacket' });
  cleanups.push(() => server.close());
  const attachment = new BrokerAttachment({
    controlPath: dir.path('control.sock'),
    server: { endpoint: dir.path('daemon.sock'), adopt: () => false },
    serviceName: 'demo',
    fdStore,
  });
  cleanups.push(() => attachment.close());
  const connection = once(server, 'connection') as Promise<[FdSocket]>;
  await attachment.attach();
  const [broker] = await connection;
  cleanups.push(() => broker.close());
  const [first] = (await once(broker, 'message')) as [ReceivedMessage];
  const [frame] = new FrameDecoder().push(first.data);
  const registration = ChannelRegistration.decode(frame!.payload);
  return { attachment, broker, registration };
}

function delivery(names: string[], metadata: Uint8Array[] = []): Uint8Array {
  return encodeFramed(
    eventFrame(NO_TRACE, { payload: FdStoreEntries.encode({ names, metadata }) }),
  );
}

describe('BrokerAttachment fd store', () => {
  it('asks for the fd store only with fdStore: true, and storeFds needs it', async () => {
    const without = await attached(false);
    expect(without.registration.channelCapabilities & CHANNEL_CAP_FD_STORE).toBe(0n);
    await expect(without.attachment.storeFds([])).rejects.toMatchObject({ code: 'NOT_ATTACHED' });
    const withStore = await attached(true);
    expect(withStore.registration.channelCapabilities & CHANNEL_CAP_FD_STORE).toBe(
      CHANNEL_CAP_FD_STORE,
    );
  });

  it('storeFds sends names, metadata and fds in one EVENT message; the caller keeps its fds', async () => {
    const { attachment, broker } = await attached(true);
    const a = memfd('alpha');
    const b = memfd('beta');
    cleanups.push(() => {
      closeFd(a);
      closeFd(b);
    });
    const got = once(broker, 'message') as Promise<[ReceivedMessage]>;
    await attachment.storeFds([
      { name: 'line:1', fd: a },
      { name: 'kv-state', fd: b, metadata: new Uint8Array([9]) },
    ]);
    const [{ data, fds }] = await got;
    const [frame] = new FrameDecoder().push(data);
    expect(frame!.kind).toBe(FrameKind.EVENT);
    const entries = FdStoreEntries.decode(frame!.payload);
    expect(entries.names).toEqual(['line:1', 'kv-state']);
    expect(entries.metadata.map((m) => [...m])).toEqual([[], [9]]);
    expect(fds.map((fd) => fdText(fd))).toEqual(['alpha', 'beta']);
    for (const fd of fds) closeFd(fd);
    expect(isOpenFd(a) && isOpenFd(b)).toBe(true);
  });

  it('refuses bad names and oversize metadata before sending anything', async () => {
    const { attachment } = await attached(true);
    const fd = memfd('x');
    cleanups.push(() => closeFd(fd));
    for (const [entries, code] of [
      [[{ name: 'bad name', fd }], 'BAD_FD_NAME'],
      [
        [
          { name: 'a', fd },
          { name: 'a', fd },
        ],
        'BAD_FD_NAME',
      ],
      [[{ name: 'a', fd, metadata: new Uint8Array(4097) }], 'METADATA_TOO_LARGE'],
    ] as const) {
      const error = await attachment.storeFds(entries).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FdStoreClientError);
      expect(error).toMatchObject({ code });
    }
  });

  it("a delivery comes out as 'fds', owned by the listener; with no listener it is closed", async () => {
    const { attachment, broker } = await attached(true);
    const baseline = openFds();
    const fd = memfd('stored state');
    const heard = once(attachment, 'fds') as Promise<[StoredFdEntry[]]>;
    broker.write(delivery(['kv-state'], [new Uint8Array([1, 2])]), [fd]);
    const [[entry]] = await heard;
    expect(entry!.name).toBe('kv-state');
    expect([...entry!.metadata]).toEqual([1, 2]);
    expect(fdText(entry!.fd)).toBe('stored state');
    closeFd(entry!.fd);
    // No listener: received, closed, the channel stays.
    attachment.removeAllListeners('fds');
    broker.write(delivery(['line:4']), [fd]);
    closeFd(fd);
    await expect.poll(() => openFds()).toBe(baseline);
    expect(attachment.attached).toBe(true);
  });

  it('a delivery whose names do not match its fds closes the fds and the channel (BAD_FD_DELIVERY)', async () => {
    const { attachment, broker } = await attached(true);
    const before = openFds();
    const fd = memfd('x');
    attachment.on('fds', () => expect.unreachable('a bad delivery must not be delivered'));
    const detached = once(attachment, 'detached');
    broker.write(delivery(['a', 'b']), [fd]);
    closeFd(fd);
    await detached;
    attachment.close();
    broker.close();
    // The delivered fd, the attachment's end and the broker's end: all closed.
    await expect.poll(() => openFds()).toBe(before - 2);
  });
});
