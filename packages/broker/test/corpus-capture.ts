// Captures the bytes real broker-side components write, for the fuzz
// corpora: connectService's Hello (+ initialData), adminRequest's frame, and
// both directions of a control channel — a real BackendChannel offering to
// a real BrokerAttachment/HandoffAcceptor — through a recording relay.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { BrokerAttachment, currentDaemonProcess, serveDaemon } from '@handoff/backend-sdk';
import { closeFds, FdServer, FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { AdminVerb, encodeFramed, requestFrame } from '@handoff/protocol';
import { adminRequest } from '../src/client/admin-client.js';
import { connectService } from '../src/client/connect-service.js';
import { BackendChannel } from '../src/handoff/control-channel.js';
import { tempDir } from './admin-harness.js';

export { readCorpus, writeCorpus } from '@handoff/testkit';

export const corpusDir = new URL('./fixtures/corpus/', import.meta.url);
export const SERVED_PROTOCOL = 0x7001;
export const TOKEN = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

/** Accepts one connection, keeps what it sends until `enough` says so, then hangs up. */
async function recordOne(
  path: string,
  enough: (bytes: Buffer) => boolean,
  drive: () => Promise<unknown>,
): Promise<Uint8Array> {
  let got = Buffer.alloc(0);
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  let first = true;
  const server = createServer((socket: Socket) => {
    // connectService retries once when we hang up: only its first try counts.
    if (!first) {
      socket.destroy();
      return;
    }
    first = false;
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (enough(got)) {
        socket.destroy();
        resolveDone();
      }
    });
    socket.on('error', () => {});
  });
  server.listen(path);
  await once(server, 'listening');
  // The client fails once we hang up: its bytes are all we wanted.
  const driven = drive().catch(() => {});
  await done;
  await driven;
  server.close();
  return new Uint8Array(got);
}

/** Whole frames at the front of `b`: how many. */
function frameCount(b: Uint8Array): number {
  let n = 0;
  let at = 0;
  while (at + 5 <= b.length) {
    const end = at + 5 + new DataView(b.buffer, b.byteOffset + at + 1, 4).getUint32(0, true);
    if (end > b.length) break;
    n++;
    at = end;
  }
  return n;
}

export const INITIAL_REQUEST = encodeFramed(
  requestFrame({
    payloadProtocol: SERVED_PROTOCOL,
    payload: new TextEncoder().encode('first request'),
    requestId: 1n,
  }),
);

export async function captureClientTraffic(): Promise<Record<string, Uint8Array>> {
  const tmp = tempDir('corpus');
  try {
    const hello = await recordOne(
      tmp.path('broker.sock'),
      (b) => frameCount(b) >= 2,
      () =>
        connectService('echo', {
          version: '1.0.0',
          brokerPath: tmp.path('broker.sock'),
          clientVersion: '2.3.4',
          initialData: INITIAL_REQUEST,
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          timeoutMs: 2000,
        }),
    );
    const admin = await recordOne(
      tmp.path('admin.sock'),
      (b) => frameCount(b) >= 1,
      () => adminRequest(tmp.path('admin.sock'), { verb: AdminVerb.STATUS, json: true }),
    );
    const shutdown = await recordOne(
      tmp.path('admin2.sock'),
      (b) => frameCount(b) >= 1,
      () =>
        adminRequest(tmp.path('admin2.sock'), {
          verb: AdminVerb.SHUTDOWN,
          drainDeadlineMs: 1500n,
        }),
    );
    return { 'client-hello': hello, 'admin-status': admin, 'admin-shutdown': shutdown };
  } finally {
    tmp.remove();
  }
}

/**
 * A control channel's traffic: the backend's registration and acks, the
 * broker's offers (token + framed offer in one message, with the fd). One
 * offer is accepted, one refused (wrong service).
 */
export async function captureControlChannel(): Promise<Record<string, Uint8Array>> {
  const tmp = tempDir('corpus');
  const endpoint = tmp.path('daemon.sock');
  const daemon = await serveDaemon({
    endpoint,
    identity: await currentDaemonProcess(endpoint, { entryScript: null }),
    payloadProtocols: [SERVED_PROTOCOL],
    onRequest: (f) => f.payload,
  });
  const control = await FdServer.listen(tmp.path('control.sock'), { kind: 'seqpacket' });
  const accepted = once(control, 'connection') as Promise<[FdSocket]>;
  const attachment = new BrokerAttachment({
    controlPath: tmp.path('control.sock'),
    server: daemon,
    serviceName: 'echo',
  });
  const [relayBroker, brokerEnd] = FdSocket.pair('seqpacket');
  const toBackend: Uint8Array[] = [];
  const toBroker: Uint8Array[] = [];
  const clients: FdSocket[] = [];
  try {
    await attachment.attach();
    const [relayBackend] = await accepted;
    const forward = (from: FdSocket, to: FdSocket, record: Uint8Array[]) =>
      from.on('message', ({ data, fds }: ReceivedMessage) => {
        record.push(new Uint8Array(data));
        if (!to.closed) to.write(data, fds);
        if (fds.length > 0) closeFds(fds);
      });
    forward(relayBackend, relayBroker, toBroker);
    forward(relayBroker, relayBackend, toBackend);
    const channel = new BackendChannel(brokerEnd);
    await once(channel, 'registered');
    const offerOne = async (serviceName: string, correlationId: bigint) => {
      const [client, served] = FdSocket.pair('stream');
      clients.push(client);
      const outcome = await channel.offer(
        served.fd,
        {
          token: TOKEN.map((b) => b ^ Number(correlationId)),
          serviceName,
          correlationId,
          bufferedClientBytes: INITIAL_REQUEST,
          clientPrelude: new TextEncoder().encode('prelude'),
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          tracestate: '',
        },
        5000,
      );
      served.close();
      return outcome;
    };
    const ok = await offerOne('echo', 7n);
    const refused = await offerOne('other', 8n);
    if (!ok.accepted || refused.accepted) throw new Error('capture: unexpected offer outcomes');
    channel.close();
    relayBackend.close();
  } finally {
    attachment.close();
    relayBroker.close();
    for (const c of clients) c.close();
    control.close();
    await daemon.close({ deadlineMs: 100 });
    tmp.remove();
  }
  const entries: Record<string, Uint8Array> = {};
  toBroker.forEach((m, i) => {
    entries[`backend-${i}`] = m;
  });
  toBackend.forEach((m, i) => {
    entries[`broker-${i}-offer`] = m;
  });
  return entries;
}
