// Regression (issue 14): serveDaemon reported PEER_REJECTED twice in a row
// for one peer. A broker whose offer is refused offers the same client
// connection once more before falling back, so a daemon that does not allow
// the client's uid was asked to adopt it twice, and reported it twice.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FdSocket, fdOf } from '@handoff/fdpass';
import {
  encodeFramed,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffOffer,
  requestFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type DaemonIdentity,
  type DaemonServer,
  HandoffAcceptor,
  type ServerConnectionError,
  serveDaemon,
} from '../src/index.js';
import { identityFor, tempDir } from './harness.js';

const tmp = tempDir('peer-once');
let identity: DaemonIdentity;
let counter = 0;
const cleanup: (() => void | Promise<void>)[] = [];

beforeAll(async () => {
  identity = await identityFor(tmp.path('x.sock'));
}, 60_000);
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
afterAll(() => tmp.remove());

/** A daemon that allows nobody in this test (we are not uid 12345), and its rejections. */
async function refusingDaemon(): Promise<{
  server: DaemonServer;
  errors: ServerConnectionError[];
}> {
  const endpoint = tmp.path(`d${++counter}.sock`);
  const server = await serveDaemon({
    endpoint,
    identity: {
      ...identity,
      process: { ...identity.process, ipcEndpoint: { namespaceId: '', path: endpoint } },
    },
    payloadProtocols: [0xf001],
    onRequest: (frame) => frame.payload,
    allowedUids: [12345],
  });
  cleanup.push(() => server.close({ deadlineMs: 100 }));
  const errors: ServerConnectionError[] = [];
  server.on('connectionError', (error: ServerConnectionError) => errors.push(error));
  return { server, errors };
}

/** A client connected to a stand-in broker socket, and the broker's copy of the connection. */
async function clientAtBroker(): Promise<Socket> {
  const accepted: Socket[] = [];
  const listener: Server = createServer({ pauseOnConnect: true }, (s) => accepted.push(s));
  await new Promise<void>((resolve) => listener.listen(tmp.path(`b${++counter}.sock`), resolve));
  const client = connect(listener.address() as string);
  client.on('error', () => {});
  cleanup.push(() => {
    client.destroy();
    for (const s of accepted) s.destroy();
    listener.close();
  });
  await expect.poll(() => accepted.length).toBe(1);
  return accepted[0]!;
}

describe('regression: PEER_REJECTED is emitted once per rejected peer', () => {
  it('a broker offering the same refused client twice yields one PEER_REJECTED', async () => {
    const { server, errors } = await refusingDaemon();
    const brokerCopy = await clientAtBroker();
    const [brokerEnd, daemonEnd] = FdSocket.pair('seqpacket');
    const acceptor = new HandoffAcceptor(daemonEnd, { server });
    cleanup.push(() => {
      acceptor.close();
      brokerEnd.close();
    });
    let refused = 0;
    acceptor.on('rejected', () => refused++);
    // The broker's first offer, then its second offer of the same client.
    for (const correlationId of [1n, 2n]) {
      const token = randomBytes(16);
      brokerEnd.write(token, [fdOf(brokerCopy)]);
      brokerEnd.write(
        encodeFramed(
          requestFrame({
            payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
            requestId: correlationId,
            payload: HandoffOffer.encode({ token, correlationId }),
          }),
        ),
      );
      await expect.poll(() => refused).toBe(Number(correlationId));
    }
    expect(errors.map((e) => e.code)).toEqual(['PEER_REJECTED']);
  });

  it('a client dialling the daemon directly yields one PEER_REJECTED', async () => {
    const { server, errors } = await refusingDaemon();
    const socket = connect(server.endpoint);
    socket.on('error', () => {});
    cleanup.push(() => {
      socket.destroy();
    });
    await once(socket, 'close');
    expect(errors.map((e) => e.code)).toEqual(['PEER_REJECTED']);
  });
});
