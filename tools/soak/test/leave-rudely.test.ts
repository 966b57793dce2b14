// An abrupt client whose daemon is already gone: its write fails (EPIPE),
// and that must stay the socket's business. Without a listener the 'error'
// is unhandled and takes the whole soak runner down, as it once did in CI
// right after a daemon kill.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { leaveRudely } from '../src/traffic.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('leaveRudely', () => {
  it('writes to a peer that has closed, and the EPIPE ends the socket without an unhandled error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'soak-rude-'));
    dirs.push(dir);
    const path = join(dir, 's.sock');
    const server = createServer();
    server.listen(path);
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect({ path });
    await once(client, 'connect');
    // Not reading: the client must not see the EOF and end by itself first,
    // so its write reaches a socket whose peer is closed.
    client.pause();
    const [peer] = await accepted;
    peer.destroy();
    await once(peer, 'close');
    server.close();

    await leaveRudely(client, Buffer.alloc(64 * 1024, 1), 5);
    if (!client.closed) await once(client, 'close');

    expect(client.destroyed).toBe(true);
    expect((client.errored as NodeJS.ErrnoException | null)?.code).toMatch(/^(EPIPE|ECONNRESET)$/);
  });
});
