// LineConnection.handOver, what the fd store hand-over relies on: a
// connection with a partial line (or unsent answers) is not handed over and
// keeps serving; an idle one stops reading without consuming a byte, so
// whoever takes the socket next answers what the client sends meanwhile.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KvService } from '../src/kv-service.js';
import { KvStore } from '../src/kv-store.js';
import { LineConnection } from '../src/line-connection.js';
import { LineClient, tempDir } from './harness.js';

const tmp = tempDir('line-handover');
let n = 0;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => tmp.remove());

const service = new KvService(new KvStore(), { connections: () => 1, handoffs: () => 0 });
const options = { maxLineBytes: 1024, execute: service.executeNow.bind(service) };

/** A served line connection and the client at its other end. */
async function pair(): Promise<{ connection: LineConnection; socket: Socket; client: LineClient }> {
  const path = tmp.path(`h${++n}.sock`);
  const server: Server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = await LineClient.connect(path);
  const [socket] = await accepted;
  const connection = new LineConnection(socket, new Uint8Array(0), options);
  cleanups.push(async () => {
    client.close();
    socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { connection, socket, client };
}

describe('LineConnection.handOver', () => {
  it('an idle connection stops reading and leaves what the client sends next to the socket’s next owner', async () => {
    const { connection, socket, client } = await pair();
    expect(await client.ask('SET k v')).toBe('STORED');
    expect(connection.handOver()).toBe(socket);
    client.send('GET k\n');
    // The next owner (here a new LineConnection on the same socket) answers it.
    const next = new LineConnection(socket, new Uint8Array(0), options);
    expect(await client.line()).toBe('VALUE v');
    next.destroy();
  });

  it('a connection holding a partial line is not handed over and serves on', async () => {
    const { connection, socket, client } = await pair();
    expect(await client.ask('SET p q')).toBe('STORED');
    client.send('GET ');
    // Once the connection has read the half line:
    await expect.poll(() => socket.bytesRead).toBe('SET p q\nGET '.length);
    expect(connection.handOver()).toBeNull();
    expect(await client.ask('p')).toBe('VALUE q');
  });
});
