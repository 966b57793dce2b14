// How a dispatcher worker turns a received fd into a net.Socket
// (dispatch/adopt-socket.ts): over real accepted TCP and Unix connections,
// bytes both ways, the kernel's addresses, TCP_NODELAY, the fd released on
// close; a dead fd fails with its errno and leaves nothing open; and under
// --pending-deprecation the public path is taken without a warning.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { openSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { closeFd, duplicateFd, FdAcceptor, FdSocket, fdOf, socketFromFd } from '@handoff/fdpass';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { adoptionPath, adoptSocket } from '../src/dispatch/adopt-socket.js';
import { openFdCount, readAll } from './dispatch-helpers.js';

const run = promisify(execFile);

let baseline = 0;
const cleanups: (() => void)[] = [];
beforeEach(() => {
  baseline = openFdCount();
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await vi.waitFor(() => expect(openFdCount()).toBe(baseline), { timeout: 5000 });
});

/** A client connected over loopback TCP and the server end, accepted as a raw fd we own. */
async function tcpConnection(): Promise<{ client: Socket; fd: number }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const acceptor = FdAcceptor.fromFd(duplicateFd(fdOf(server)));
  server.close();
  cleanups.push(() => acceptor.close());
  const accepted = once(acceptor, 'connections') as Promise<[number[]]>;
  const client = connect(port, '127.0.0.1');
  cleanups.push(() => client.destroy());
  const [[fd, ...more]] = await accepted;
  expect(more).toEqual([]);
  if (client.connecting) await once(client, 'connect');
  return { client, fd: fd as number };
}

/** Writes `text` from `from`, ends it, and resolves with what `to` read. */
function echoCheck(from: Socket, to: Socket, text: string): Promise<string> {
  const got = readAll(to);
  from.end(text);
  return got;
}

describe('adoptSocket', () => {
  it('uses Node’s handles directly in a plain process', () => {
    expect(adoptionPath()).toBe('handle');
  });

  it('adopts an accepted TCP connection: addresses, TCP_NODELAY, bytes both ways, fd closed with it', async () => {
    const { client, fd } = await tcpConnection();
    const socket = adoptSocket(fd, 'tcp', true);
    cleanups.push(() => socket.destroy());
    const closed = once(socket, 'close');
    expect(socket.remoteAddress).toBe('127.0.0.1');
    expect(socket.remotePort).toBe(client.localPort);
    expect(socket.localPort).toBe(client.remotePort);
    socket.setNoDelay(true); // a TCP handle: setsockopt succeeds
    // allowHalfOpen: the client's end leaves our side writable.
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d;
    });
    const ended = once(socket, 'end');
    client.end('ping');
    await ended;
    expect(got).toBe('ping');
    expect(socket.writable).toBe(true);
    expect(await echoCheck(socket, client, 'pong')).toBe('pong');
    await closed;
  });

  it('adopts a Unix stream connection', async () => {
    const [a, b] = FdSocket.pair('stream');
    const peer = socketFromFd(duplicateFd(a.fd));
    const fd = duplicateFd(b.fd);
    a.close();
    b.close();
    cleanups.push(() => peer.destroy());
    const socket = adoptSocket(fd, 'unix', false);
    cleanups.push(() => socket.destroy());
    const closed = once(socket, 'close');
    const back = readAll(peer);
    socket.on('data', (d: Buffer) => socket.end(`echo:${d}`));
    peer.write('hi');
    expect(await back).toBe('echo:hi');
    await closed;
  });

  it('a closed fd fails with its errno (EBADF) and leaves nothing open', () => {
    for (const transport of ['tcp', 'unix'] as const) {
      const fd = openSync('/dev/null', 'r');
      closeFd(fd);
      expect(() => adoptSocket(fd, transport, false)).toThrow(
        expect.objectContaining({ code: 'EBADF', syscall: 'open' }),
      );
    }
  });

  it('under --pending-deprecation takes the public path, with no deprecation warning', async () => {
    const root = join(import.meta.dirname, '..');
    const script = `
      import { FdSocket, duplicateFd, socketFromFd } from '@handoff/fdpass';
      import { adoptSocket, adoptionPath } from './src/dispatch/adopt-socket.ts';
      const [a, b] = FdSocket.pair('stream');
      const peer = socketFromFd(duplicateFd(a.fd));
      const socket = adoptSocket(duplicateFd(b.fd), 'unix', false);
      a.close(); b.close();
      socket.on('data', (d) => socket.end('echo:' + d));
      let got = '';
      peer.on('data', (d) => { got += d; });
      peer.on('end', () => { console.log(JSON.stringify({ path: adoptionPath(), got })); peer.destroy(); });
      peer.write('x');
    `;
    const cases = [
      { env: { NODE_PENDING_DEPRECATION: '1' }, path: 'fd' },
      { env: {}, path: 'handle' },
    ];
    for (const c of cases) {
      const { stdout, stderr } = await run(
        process.execPath,
        ['--conditions=@handoff/source', '--import', 'tsx', '--input-type=module', '-e', script],
        { cwd: root, env: { ...process.env, ...c.env }, timeout: 30_000 },
      );
      expect(stderr).not.toMatch(/DEP0111|Deprecation/);
      expect(JSON.parse(stdout.trim())).toEqual({ path: c.path, got: 'echo:x' });
    }
  });
});
