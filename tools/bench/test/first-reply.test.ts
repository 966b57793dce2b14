// firstReply times every Hello of the broker cases: it must time a reply,
// and fail (not hang the bench) when a server closes without one.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstReply } from '../src/broker/frames.ts';

let dir: string;
const servers: Server[] = [];
const listen = async (name: string, onConnection: (socket: Socket) => void) => {
  const path = join(dir, name);
  const server = createServer(onConnection);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
};
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'first-reply-'));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  rmSync(dir, { recursive: true, force: true });
});

describe('firstReply', () => {
  it('times the first reply byte', async () => {
    const path = await listen('answers.sock', (socket) =>
      socket.once('data', () => socket.end('ok')).on('error', () => {}),
    );
    const ms = await firstReply(path, new Uint8Array([1, 2, 3]));
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(5000);
  });

  it('fails, naming the server, when it closes without a reply', async () => {
    const path = await listen('silent.sock', (socket) =>
      socket.once('data', () => socket.end()).on('error', () => {}),
    );
    await expect(firstReply(path, new Uint8Array([1, 2, 3]))).rejects.toThrow(
      `${path} closed the connection without a reply`,
    );
  });

  it('fails when nothing listens', async () => {
    await expect(firstReply(join(dir, 'nobody.sock'), new Uint8Array([1]))).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});
