// tcpNoDelay against sockets whose option we set through Node, and an fd
// that is no TCP socket: python3's answer follows the kernel, either way.
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { tcpNoDelay } from '../src/index.js';

const fdOf = (s: Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;

describe('tcpNoDelay', () => {
  it('reads TCP_NODELAY as the kernel has it, off and on', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    client.setNoDelay(false);
    expect(await tcpNoDelay(fdOf(client))).toBe(false);
    client.setNoDelay(true);
    expect(await tcpNoDelay(fdOf(client))).toBe(true);
    client.destroy();
    server.close();
    await once(server, 'close');
  });

  it('fails on an fd that is not a TCP socket', async () => {
    const fd = openSync('/dev/null', 'r');
    try {
      await expect(tcpNoDelay(fd)).rejects.toThrow(/could not read TCP_NODELAY/);
    } finally {
      closeSync(fd);
    }
  });
});
