import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FdPassError, FdSocket, peerCredentials } from '../src/index.js';
import { makeTempDir } from './helpers.js';

const self = { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() };

describe('peerCredentials', () => {
  const dirs: Array<{ cleanup(): void }> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.cleanup();
  });

  it('reports this process for both ends of a pair (FdSocket and raw fd)', () => {
    const [a, b] = FdSocket.pair();
    expect(peerCredentials(a)).toEqual(self);
    expect(peerCredentials(b.fd)).toEqual(self);
    a.close();
    b.close();
  });

  it('works on a net.Socket connected over a Unix path', async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    const server = createServer();
    server.listen(dir.file('s.sock'));
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const client = createConnection(dir.file('s.sock'));
    await once(client, 'connect');
    const [serverSide] = (await accepted) as [Socket];
    expect(peerCredentials(serverSide)).toEqual(self);
    expect(peerCredentials(client)).toEqual(self);
    client.destroy();
    serverSide.destroy();
    await new Promise((r) => server.close(r));
  });

  it('returns a fresh object per call: the addon writes into a scratch array nobody else sees', () => {
    const [a, b] = FdSocket.pair();
    const first = peerCredentials(a);
    const second = peerCredentials(b);
    expect(second).not.toBe(first);
    first.pid = -7;
    first.uid = -7;
    expect(second).toEqual(self);
    expect(peerCredentials(a)).toEqual(self);
    a.close();
    b.close();
  });

  it('fails typed on a non-socket and on a closed FdSocket', () => {
    expect(() => peerCredentials(0 + 1_000_000)).toThrow(FdPassError);
    const [a, b] = FdSocket.pair();
    a.close();
    b.close();
    expect(() => peerCredentials(a)).toThrow(TypeError);
  });
});
