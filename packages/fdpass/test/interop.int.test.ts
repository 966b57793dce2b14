import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  closeFd,
  FdServer,
  FdSocket,
  type ReceivedMessage,
  type SocketKind,
} from '../src/index.js';
import { nextEvent, sameFile } from './helpers.js';
import { pythonPeerPath, spawnNodePeer, spawnPeer, usePeerSandbox } from './process-helpers.js';

const sandbox = usePeerSandbox();

function pread(fd: number): string {
  const buf = Buffer.alloc(200);
  const n = readSync(fd, buf, 0, buf.length, 0);
  return buf.subarray(0, n).toString();
}

describe.each(['seqpacket', 'stream'] as const)('two unrelated Node processes (%s)', (kind) => {
  it('exchange fds over a socket path: 1 and 253 per message, both directions', async () => {
    const path = sandbox.dir.file('echo.sock');
    const server = await FdServer.listen(path, { kind, mode: 0o600 });
    const accepted = nextEvent<FdSocket>(server, 'connection');
    const peer = spawnNodePeer(['echo', path, kind]);
    const socket = await accepted;
    const file = openSync(sandbox.dir.file('shared.txt'), 'w+');
    writeFileSync(file, 'shared content');

    for (const count of [1, 253]) {
      const got = nextEvent<ReceivedMessage>(socket, 'message');
      socket.write(Buffer.from(`batch of ${count}`), new Array<number>(count).fill(file));
      const m = await got;
      expect(m.data.toString()).toBe(`batch of ${count}`);
      expect(m.fds).toHaveLength(count);
      for (const fd of m.fds) expect(sameFile(fd, file)).toBe(true);
      expect(pread(m.fds[0] as number)).toBe('shared content');
      for (const fd of m.fds) closeFd(fd);
    }
    socket.end();
    await peer.line((v: { done?: boolean }) => v.done === true);
    await peer.exited;
    closeSync(file);
    socket.close();
    server.close();
  });
});

describe.each(['seqpacket', 'stream'] as const)(
  'Python stdlib send_fds/recv_fds (%s)',
  (kind: SocketKind) => {
    async function exchange(socket: FdSocket, peer: ReturnType<typeof spawnPeer>) {
      const hello = await nextEvent<ReceivedMessage>(socket, 'message');
      expect(hello.data.toString()).toBe('py-hello');
      expect(hello.fds).toHaveLength(1);
      expect(pread(hello.fds[0] as number)).toBe('written by python');
      closeFd(hello.fds[0] as number);

      writeFileSync(sandbox.dir.file('from-node.txt'), 'written by node');
      const file = openSync(sandbox.dir.file('from-node.txt'), 'r');
      socket.write(Buffer.from('node-hello'), new Array<number>(253).fill(file));
      closeSync(file);
      const result = await peer.line<{
        data: string;
        fds: number;
        contents: string[];
        truncated: boolean;
      }>((v) => 'data' in v);
      expect(result).toEqual({
        data: 'node-hello',
        fds: 253,
        contents: ['written by node'],
        truncated: false,
      });
      await peer.exited;
    }

    it('Python connects to our FdServer', async () => {
      const path = sandbox.dir.file('py-in.sock');
      const server = await FdServer.listen(path, { kind });
      const accepted = nextEvent<FdSocket>(server, 'connection');
      const peer = spawnPeer('python3', [
        pythonPeerPath,
        'connect',
        path,
        kind,
        sandbox.dir.file('py.txt'),
      ]);
      const socket = await accepted;
      await exchange(socket, peer);
      socket.close();
      server.close();
    });

    it('we connect to a Python listener', async () => {
      const path = sandbox.dir.file('py-out.sock');
      const peer = spawnPeer('python3', [
        pythonPeerPath,
        'listen',
        path,
        kind,
        sandbox.dir.file('py.txt'),
      ]);
      await peer.line((v: { listening?: boolean }) => v.listening === true);
      const socket = await FdSocket.connect(path, { kind });
      await exchange(socket, peer);
      socket.close();
    });
  },
);

describe('close-on-exec', () => {
  it('a child spawned after fds arrived inherits none of them', async () => {
    const [a, b] = FdSocket.pair();
    const marker = sandbox.dir.file('must-not-leak.txt');
    writeFileSync(marker, 'secret');
    const file = openSync(marker, 'r');
    const got = nextEvent<ReceivedMessage>(b, 'message');
    a.write(Buffer.from('x'), new Array<number>(20).fill(file));
    const m = await got;
    closeSync(file);
    // Only the received copies are open now; ask a fresh process what it has.
    const listing = spawnSync('ls', ['-l', '/proc/self/fd'], { encoding: 'utf8' });
    expect(listing.status).toBe(0);
    expect(listing.stdout).not.toContain('must-not-leak');
    expect(readFileSync(`/proc/self/fdinfo/${m.fds[0]}`, 'utf8')).toMatch(/flags:\s+0?2/);
    for (const fd of m.fds) closeFd(fd);
    a.close();
    b.close();
  });
});
