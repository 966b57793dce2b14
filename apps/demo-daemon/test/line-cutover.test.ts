// The live cut-over of line connections (line-cutover.ts) with real sockets
// and real fd passing: the old daemon answers until the successor holds the
// fds, then the successor answers, with the bytes the old one read and did
// not answer; without a successor, idle lines wait for the next daemon and
// busy ones drain; a predecessor gone without a G leaves every line to the
// successor; an unreadable message closes the lines. Old and new daemons
// answer from different stores, so each answer says who gave it.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { FdSocket, fdOf, type ReceivedMessage } from '@handoff/backend-sdk';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KvService } from '../src/kv-service.js';
import { KvStore } from '../src/kv-store.js';
import { LineConnection } from '../src/line-connection.js';
import { cutOver, receiveCutover } from '../src/line-cutover.js';
import { LineClient, openFds, tempDir } from './harness.js';

const tmp = tempDir('line-cutover');
const log = pino({ level: 'silent' });
let n = 0;
let baselineFds = 0;
const cleanups: (() => Promise<void> | void)[] = [];
beforeAll(() => {
  baselineFds = openFds();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => tmp.remove());

function serviceAnswering(who: string) {
  const store = new KvStore();
  store.set(new TextEncoder().encode('who'), new TextEncoder().encode(who));
  const service = new KvService(store, { connections: () => 1, handoffs: () => 0 });
  return { maxLineBytes: 1024, execute: service.executeNow.bind(service) };
}
const oldDaemon = serviceAnswering('old');
const newDaemon = serviceAnswering('new');

/** A line connection the old daemon serves, and the client at its other end. */
async function served(): Promise<{ line: LineConnection; socket: Socket; client: LineClient }> {
  const path = tmp.path(`c${++n}.sock`);
  const server: Server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = await LineClient.connect(path);
  const [socket] = await accepted;
  const line = new LineConnection(socket, new Uint8Array(0), oldDaemon);
  cleanups.push(async () => {
    client.close();
    socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { line, socket, client };
}

/** The kernel's copies of `fds`, as a broker's delivery would bring them (over a real socketpair). */
async function passed(fds: number[]): Promise<number[]> {
  const [a, b] = FdSocket.pair('seqpacket');
  const got = once(b, 'message') as Promise<[ReceivedMessage]>;
  a.write(Buffer.of(1), fds);
  const [message] = await got;
  a.close();
  b.close();
  return message.fds;
}

/** Takes the lines over as a successor would; resolves with each adopted line's rest once G came. */
function successor(pairFd: number, lines: { name: string; fd: number }[]) {
  const adopted: { socket: Socket; rest: string }[] = [];
  const done = new Promise<{ socket: Socket; rest: string }[]>((resolve) => {
    receiveCutover(
      pairFd,
      lines,
      (socket, rest) => {
        adopted.push({ socket, rest: Buffer.from(rest).toString('utf8') });
        const line = new LineConnection(socket, rest, newDaemon);
        cleanups.push(() => line.destroy());
        if (adopted.length === lines.length) resolve(adopted);
      },
      log,
      { settleMaxMs: 50 },
    );
  });
  return done;
}

const waitUntil = async (check: () => boolean) => {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 2));
};

describe('line cut-over', () => {
  it('the old daemon answers until the successor holds the fds; a half-read line crosses and is answered once, by the successor', async () => {
    const { line, socket, client } = await served();
    const [mine, theirs] = FdSocket.pair('seqpacket');
    const result = cutOver(mine, new Map([['line:1', line]]), {
      waitMs: 10_000,
      flushMs: 1000,
      log,
    });
    // Deposited, and still served by the old daemon.
    expect(await client.ask('GET who')).toBe('VALUE old');
    // Half a line, read by the old daemon and not answerable yet.
    const before = socket.bytesRead;
    client.send('GET w');
    await waitUntil(() => socket.bytesRead === before + 5);
    const [pairFd, lineFd] = await passed([theirs.fd, fdOf(socket)]);
    theirs.close();
    const adopted = await successor(pairFd!, [{ name: 'line:1', fd: lineFd! }]);
    expect(adopted.map((a) => a.rest)).toEqual(['GET w']);
    expect(await result).toEqual({ confirmed: true, handed: 1, kept: 0 });
    expect(socket.destroyed).toBe(true);
    // The rest of the line: the successor answers the whole of it, once.
    client.send('ho\nGET who\n');
    expect(await client.line()).toBe('VALUE new');
    expect(await client.line()).toBe('VALUE new');
  });

  it('the successor reads nothing of a line it holds until G: the old daemon answers every request meanwhile', async () => {
    const { line, socket, client } = await served();
    const [mine, theirs] = FdSocket.pair('seqpacket');
    const [pairFd, lineFd] = await passed([theirs.fd, fdOf(socket)]);
    theirs.close();
    const said = once(mine, 'message') as Promise<[ReceivedMessage]>;
    const adopted = successor(pairFd!, [{ name: 'line:1', fd: lineFd! }]);
    const [a] = await said;
    expect(a.data.toString('latin1')).toBe('A');
    // Both hold the socket now; only the old daemon reads it.
    for (let i = 0; i < 20; i++) expect(await client.ask('GET who')).toBe('VALUE old');
    const released = line.release();
    expect(released?.rest.length).toBe(0);
    released?.socket.destroy();
    mine.write(Buffer.from('G["line:1"]'));
    await adopted;
    expect(await client.ask('GET who')).toBe('VALUE new');
    mine.close();
  });

  it('with no successor within waitMs, an idle line is left for the next daemon and a busy one drains', async () => {
    const idle = await served();
    const busy = await served();
    expect(await idle.client.ask('GET who')).toBe('VALUE old');
    const before = busy.socket.bytesRead;
    busy.client.send('GET w');
    await waitUntil(() => busy.socket.bytesRead === before + 5);
    const [mine, theirs] = FdSocket.pair('seqpacket');
    const fds = await passed([theirs.fd, fdOf(idle.socket), fdOf(busy.socket)]);
    theirs.close();
    const result = await cutOver(
      mine,
      new Map([
        ['line:1', idle.line],
        ['line:2', busy.line],
      ]),
      { waitMs: 30, flushMs: 1000, log },
    );
    expect(result).toEqual({ confirmed: false, handed: 1, kept: 1 });
    // The busy one was ended by the old daemon: its client sees the close.
    await busy.client.closed;
    // The next daemon finds G waiting: it serves the idle line, closes the other.
    const adopted: Socket[] = [];
    const closedBusyCopy = new Promise<void>((resolve) => {
      receiveCutover(
        fds[0]!,
        [
          { name: 'line:1', fd: fds[1]! },
          { name: 'line:2', fd: fds[2]! },
        ],
        (socket, rest) => {
          adopted.push(socket);
          const line = new LineConnection(socket, rest, newDaemon);
          cleanups.push(() => line.destroy());
          resolve();
        },
        log,
      );
    });
    await closedBusyCopy;
    expect(adopted).toHaveLength(1);
    expect(await idle.client.ask('GET who')).toBe('VALUE new');
  });

  it('a predecessor gone without a G (it crashed) leaves every line to the successor', async () => {
    const { socket, client } = await served();
    const [mine, theirs] = FdSocket.pair('seqpacket');
    const [pairFd, lineFd] = await passed([theirs.fd, fdOf(socket)]);
    theirs.close();
    // The old daemon's copies go, as with a crash.
    mine.close();
    socket.destroy();
    await successor(pairFd!, [{ name: 'line:1', fd: lineFd! }]);
    expect(await client.ask('GET who')).toBe('VALUE new');
  });

  it('an unreadable cut-over message closes the lines instead of risking a double answer', async () => {
    const { socket, client } = await served();
    const [mine, theirs] = FdSocket.pair('seqpacket');
    const [pairFd, lineFd] = await passed([theirs.fd, fdOf(socket)]);
    theirs.close();
    socket.destroy();
    let adopted = 0;
    receiveCutover(pairFd!, [{ name: 'line:1', fd: lineFd! }], () => adopted++, log);
    mine.write(Buffer.from('G{not json'));
    await client.closed;
    expect(adopted).toBe(0);
    mine.close();
  });
});

describe('after all of the above', () => {
  it('no fd is left behind', async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await waitUntil(() => openFds() <= baselineFds);
    expect(openFds()).toBeLessThanOrEqual(baselineFds);
  });
});
