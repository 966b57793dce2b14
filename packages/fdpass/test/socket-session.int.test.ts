import { once } from 'node:events';
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FdServer, type FdSocket, SessionForwarder } from '../src/index.js';
import { nextEvent } from './helpers.js';
import { spawnNodePeer, usePeerSandbox } from './process-helpers.js';

const sandbox = usePeerSandbox();

describe.each(['seqpacket', 'stream'] as const)(
  'moving a live TCP connection to another process (%s channel)',
  (kind) => {
    it('the client writes before and after the move; everything reaches the new owner in order', async () => {
      const tcp = createServer();
      tcp.listen(0, '127.0.0.1');
      await once(tcp, 'listening');
      const channelPath = sandbox.dir.file('sessions.sock');
      const server = await FdServer.listen(channelPath, { kind });
      const accepted = nextEvent<FdSocket>(server, 'connection');
      const peer = spawnNodePeer(['session', channelPath, kind]);
      const channel = await accepted;
      const forwarder = new SessionForwarder(channel);

      // First owner: read the first bytes itself, then hand the connection
      // and those bytes over as a socket session.
      tcp.once('connection', (conn: Socket) => {
        conn.once('data', (first: Buffer) => {
          conn.pause();
          forwarder.forward(conn, first);
          conn.destroy();
        });
      });
      const client = createConnection((tcp.address() as AddressInfo).port, '127.0.0.1');
      await once(client, 'connect');
      let received = '';
      client.setEncoding('utf8');
      client.on('data', (d: string) => {
        received += d;
      });
      client.write('hello-1');
      const info = await peer.line<{
        family: number;
        local: { port: number };
        remote: { port: number };
      }>((v) => 'family' in v);
      expect(info.family).toBe(2);
      expect(info.remote.port).toBe(client.localPort);
      expect(info.local.port).toBe(client.remotePort);
      client.write('hello-2');
      await new Promise<void>((resolve) => {
        const check = () => (received.includes('hello-2') ? resolve() : setTimeout(check, 5));
        check();
      });
      client.end();
      await once(client, 'close');
      expect(received).toBe('child saw: hello-1|child saw: hello-2|');
      await peer.line((v: { done?: boolean }) => v.done === true);
      forwarder.close();
      server.close();
      await new Promise((r) => tcp.close(r));
    });
  },
);
