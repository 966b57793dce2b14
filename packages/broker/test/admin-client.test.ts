import { once } from 'node:events';
import { createServer } from 'node:net';
import {
  AdminReplyKind,
  AdminVerb,
  encodeFramed,
  eventFrame,
  FrameDecoder,
  responseFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AdminClientError, adminRequest } from '../src/client/admin-client.js';
import { fakeBroker, startAdminServer, tempDir } from './admin-harness.js';

const tmp = tempDir('admin-client');
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});
afterAll(() => tmp.remove());
let n = 0;
const socketPath = () => tmp.path(`admin${++n}.sock`);

/** A server that does something wrong with each request, to see the client's errors. */
async function misbehavingServer(
  onFrame: (socket: import('node:net').Socket, frame: import('@handoff/protocol').Frame) => void,
) {
  const path = socketPath();
  const server = createServer((socket) => {
    const decoder = new FrameDecoder();
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk)) onFrame(socket, frame);
    });
    socket.on('error', () => {});
  });
  server.listen(path);
  await once(server, 'listening');
  closers.push(() => {
    server.close();
  });
  return path;
}

const openFds = async () => (await import('node:fs')).readdirSync('/proc/self/fd').length;

describe('adminRequest', () => {
  it('sends one framed AdminRequest (0xAD01, request id 1) and returns the reply', async () => {
    const path = socketPath();
    const broker = fakeBroker(path);
    const server = await startAdminServer(path, broker);
    closers.push(server.close);
    const reply = await adminRequest(path, { verb: AdminVerb.STATUS, json: true });
    expect(reply.kind).toBe(AdminReplyKind.JSON);
    expect(JSON.parse(reply.body)).toMatchObject({ schema_version: 1, socket_path: path });
    const metrics = await adminRequest(path, { verb: AdminVerb.METRICS });
    expect(metrics.kind).toBe(AdminReplyKind.OPENMETRICS);
    await adminRequest(path, { verb: AdminVerb.SHUTDOWN, drainDeadlineMs: 1234n });
    expect(broker.shutdowns).toEqual([1234]);
  });

  it('checks the request frame it sends', async () => {
    const seen: import('@handoff/protocol').Frame[] = [];
    const path = await misbehavingServer((socket, frame) => {
      seen.push(frame);
      socket.destroy();
    });
    await expect(adminRequest(path, { verb: AdminVerb.HEALTHZ })).rejects.toBeInstanceOf(
      AdminClientError,
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ kind: 0, payloadProtocol: 0xad01, requestId: 1n });
  });

  it('CONNECT with the errno when nothing listens', async () => {
    const path = tmp.path('absent.sock');
    await expect(adminRequest(path, { verb: AdminVerb.STATUS })).rejects.toMatchObject({
      name: 'AdminClientError',
      code: 'CONNECT',
      errno: 'ENOENT',
      socketPath: path,
    });
  });

  it('TIMEOUT when the broker never answers, and CLOSED when it hangs up', async () => {
    const silent = await misbehavingServer(() => {});
    await expect(
      adminRequest(silent, { verb: AdminVerb.STATUS }, { timeoutMs: 100 }),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    const rude = await misbehavingServer((socket) => socket.end());
    await expect(adminRequest(rude, { verb: AdminVerb.STATUS })).rejects.toMatchObject({
      code: 'CLOSED',
    });
  });

  it('PROTOCOL for garbage, a non-RESPONSE, or a wrong request id', async () => {
    const garbage = await misbehavingServer((socket) => socket.write(Buffer.from([9, 9, 9])));
    await expect(adminRequest(garbage, { verb: AdminVerb.STATUS })).rejects.toMatchObject({
      code: 'PROTOCOL',
    });
    const event = await misbehavingServer((socket, frame) =>
      socket.write(encodeFramed(eventFrame(frame))),
    );
    await expect(adminRequest(event, { verb: AdminVerb.STATUS })).rejects.toMatchObject({
      code: 'PROTOCOL',
    });
    const wrongId = await misbehavingServer((socket, frame) =>
      socket.write(encodeFramed(responseFrame({ ...frame, requestId: 7n }))),
    );
    await expect(adminRequest(wrongId, { verb: AdminVerb.STATUS })).rejects.toMatchObject({
      code: 'PROTOCOL',
    });
    const notAReply = await misbehavingServer((socket, frame) =>
      socket.write(encodeFramed(responseFrame(frame, { payload: new Uint8Array([0xff]) }))),
    );
    await expect(adminRequest(notAReply, { verb: AdminVerb.STATUS })).rejects.toMatchObject({
      code: 'PROTOCOL',
    });
  });

  it('leaks no fd on any outcome', async () => {
    const path = socketPath();
    const server = await startAdminServer(path, fakeBroker(path));
    closers.push(server.close);
    const silent = await misbehavingServer(() => {});
    await adminRequest(path, { verb: AdminVerb.STATUS });
    const before = await openFds();
    for (let i = 0; i < 20; i++) {
      await adminRequest(path, { verb: AdminVerb.STATUS });
      await adminRequest(tmp.path('absent.sock'), {}).catch(() => {});
      await adminRequest(silent, {}, { timeoutMs: 5 }).catch(() => {});
    }
    await expect.poll(openFds).toBeLessThanOrEqual(before);
  });
});
