// connectService's socket while it talks to a broker (src/client/conversation.ts),
// over real Unix sockets: a relay that came in the same read as the reply is
// taken without waiting, one that comes later is waited for, frames before it
// are handed back in order with everything unread, a failed connect and a
// failure after it are told apart without a 'connect' listener, and no
// listener of ours is left on the socket it hands back.
import { createServer, type Server, type Socket } from 'node:net';
import {
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  eventFrame,
  HANDOFF_PAYLOAD_PROTOCOL,
  requestFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CallCancellation } from '../src/client/cancellation.js';
import { ConnectServiceError } from '../src/client/connect-service-error.js';
import { Conversation } from '../src/client/conversation.js';
import { openFds, tempDir } from './harness.js';

const tmp = tempDir('client-conversation');
afterAll(() => tmp.remove());

const servers: Server[] = [];
const peers = new Set<Socket>();
const conversations: Conversation[] = [];
afterEach(async () => {
  for (const c of conversations.splice(0)) c.dispose();
  for (const peer of peers) peer.destroy();
  peers.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A listener at a fresh path whose peers `onPeer` drives. */
async function listen(
  name: string,
  onPeer: (peer: Socket) => void,
  pauseOnConnect = false,
): Promise<string> {
  const path = tmp.path(name);
  const server = createServer({ pauseOnConnect }, (peer) => {
    peers.add(peer);
    peer.on('error', () => {});
    onPeer(peer);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

function talk(path: string): Conversation {
  const c = new Conversation(path, new CallCancellation(), true);
  conversations.push(c);
  return c;
}

const CONNECTION_ID = 77n;
const reply = Buffer.from(
  encodeFramed(requestFrame({ payloadProtocol: CONTROL_PAYLOAD_PROTOCOL, requestId: 1n })),
);
/** An event on request `requestId` of `payloadProtocol`. */
function event(payloadProtocol: number, requestId: bigint, payload?: Uint8Array): Buffer {
  const on = { payloadProtocol, requestId, traceparent: '', tracestate: '' };
  return Buffer.from(encodeFramed(eventFrame(on, payload ? { payload } : {})));
}
const other = event(0xf001, 5n, Buffer.from('x'));
const relay = event(HANDOFF_PAYLOAD_PROTOCOL, CONNECTION_ID);
const after = Buffer.from('bytes the daemon sent after the relay');

/** Everything the caller reads first from a socket handed back. */
function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => got.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(got)));
  });
}

describe('Conversation', () => {
  it('takes a relay that came with the reply at once, and hands back what came before and after it', async () => {
    const path = await listen('same-read.sock', (peer) =>
      peer.end(Buffer.concat([reply, other, relay, after])),
    );
    const c = talk(path);
    const first = await c.next();
    expect(first.payloadProtocol).toBe(CONTROL_PAYLOAD_PROTOCOL);
    // The rest of that read is already here: no wait, no promise.
    const found = c.relayNow(CONNECTION_ID);
    expect(found?.requestId).toBe(CONNECTION_ID);
    const socket = c.handBack();
    expect(socket.listenerCount('connect')).toBe(0);
    expect(socket.listenerCount('data')).toBe(0);
    expect(socket.listenerCount('close')).toBe(0);
    expect(await readAll(socket)).toEqual(Buffer.concat([other, after]));
    socket.destroy();
  });

  it('waits for a relay that comes in a later read', async () => {
    let peerOf: (peer: Socket) => void = () => {};
    const connected = new Promise<Socket>((resolve) => {
      peerOf = resolve;
    });
    const path = await listen('later.sock', (peer) => {
      peer.write(reply);
      peerOf(peer);
    });
    const c = talk(path);
    await c.next();
    expect(c.relayNow(CONNECTION_ID)).toBeNull();
    const waiting = c.untilRelay(CONNECTION_ID);
    const peer = await connected;
    // Cut in two, the frame before the relay in the first piece.
    const rest = Buffer.concat([other, relay, after]);
    peer.write(rest.subarray(0, other.length + 3));
    await new Promise((r) => setTimeout(r, 20));
    peer.end(rest.subarray(other.length + 3));
    expect((await waiting).requestId).toBe(CONNECTION_ID);
    const socket = c.handBack();
    expect(await readAll(socket)).toEqual(Buffer.concat([other, after]));
    socket.destroy();
  });

  it('reports a refused connect as CONNECT and a reset after it as CLOSED', async () => {
    const missing = talk(tmp.path('nobody-here.sock'));
    const refused = await missing.next().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectServiceError);
    expect((refused as ConnectServiceError).code).toBe('CONNECT');
    expect((refused as ConnectServiceError).errno).toBe('ENOENT');

    // Closed with our bytes unread in its queue (it never reads): a Unix
    // socket's reset.
    const path = await listen('resets.sock', (peer) => setTimeout(() => peer.destroy(), 20), true);
    const c = talk(path);
    c.socket.write('a Hello the broker never reads');
    const reset = await c.next().catch((error: unknown) => error);
    expect(reset).toBeInstanceOf(ConnectServiceError);
    expect((reset as ConnectServiceError).code).toBe('CLOSED');
    expect((reset as ConnectServiceError).errno).toBe('ECONNRESET');
  });

  it('connected() waits for the connect, and fails a missing path with CONNECT', async () => {
    const path = await listen('direct.sock', () => {});
    const c = new Conversation(path, new CallCancellation());
    conversations.push(c);
    await c.connected();
    expect(c.socket.connecting).toBe(false);
    const socket = c.handBack();
    expect(socket.listenerCount('connect')).toBe(0);
    socket.destroy();

    const missing = new Conversation(tmp.path('gone.sock'), new CallCancellation());
    conversations.push(missing);
    const error = await missing.connected().catch((e: unknown) => e);
    expect((error as ConnectServiceError).code).toBe('CONNECT');
  });

  it('fails a bad frame as PROTOCOL and leaves no fd behind', async () => {
    const before = openFds();
    const path = await listen('garbage.sock', (peer) => peer.end(Buffer.from([9, 9, 9, 9, 9, 9])));
    const c = talk(path);
    const error = await c.next().catch((e: unknown) => e);
    expect((error as ConnectServiceError).code).toBe('PROTOCOL');
    c.dispose();
    for (const peer of peers) peer.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await new Promise((r) => setTimeout(r, 20));
    expect(openFds()).toBe(before);
  });
});
