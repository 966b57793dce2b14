// adminRequest against brokers that fail mid-exchange: a reset, a header
// over the frame cap, a socket file nobody listens on. Each is a typed
// AdminClientError; no fd is left behind and nothing is thrown later.
import { once } from 'node:events';
import { linkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { AdminVerb, MAX_FRAME_BYTES } from '@handoff/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AdminClientError, adminRequest } from '../src/client/admin-client.js';
import { openFds, tempDir } from './harness.js';

const tmp = tempDir('client-faults-admin');
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
});
afterAll(() => tmp.remove());
let n = 0;

async function server(
  onConnection: (socket: Socket) => void,
  options: { pauseOnConnect?: boolean } = {},
): Promise<string> {
  const path = tmp.path(`a${n++}.sock`);
  const s = createServer(options, (socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
  servers.push(s);
  s.listen(path);
  await once(s, 'listening');
  return path;
}

describe('adminRequest when the broker fails', () => {
  it('a broker that drops the connection unread is CLOSED (or CONNECT), never an uncaught error', async () => {
    // Closed before reading: the client's request may be refused, reset or
    // hit EPIPE depending on timing; all are typed, none escapes.
    const path = await server((socket) => socket.destroy(), { pauseOnConnect: true });
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      const error = await adminRequest(path, { verb: AdminVerb.STATUS }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AdminClientError);
      expect(['CLOSED', 'CONNECT']).toContain((error as AdminClientError).code);
    }
    await expect.poll(openFds).toBeLessThanOrEqual(before);
  });

  it('a reply header over the frame cap is PROTOCOL at once, its body never awaited', async () => {
    const header = Buffer.alloc(5);
    header[0] = 1;
    header.writeUInt32LE(MAX_FRAME_BYTES + 1, 1);
    const path = await server((socket) => socket.once('data', () => socket.write(header)));
    await expect(
      adminRequest(path, { verb: AdminVerb.STATUS }, { timeoutMs: 30_000 }),
    ).rejects.toMatchObject({ name: 'AdminClientError', code: 'PROTOCOL' });
  });

  it('a frame cut short by EOF is CLOSED', async () => {
    const path = await server((socket) =>
      socket.once('data', () => socket.end(Buffer.from([1, 100, 0, 0, 0, 8]))),
    );
    await expect(adminRequest(path, { verb: AdminVerb.STATUS })).rejects.toMatchObject({
      code: 'CLOSED',
    });
  });

  it('a socket file nobody listens on is CONNECT with errno ECONNREFUSED', async () => {
    const live = await server(() => {});
    const stale = tmp.path(`stale${n++}.sock`);
    linkSync(live, stale);
    await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));
    await expect(adminRequest(stale, { verb: AdminVerb.STATUS })).rejects.toMatchObject({
      code: 'CONNECT',
      errno: 'ECONNREFUSED',
    });
  });
});
