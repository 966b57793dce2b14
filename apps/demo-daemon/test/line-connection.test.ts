// LineConnection on real Unix sockets, over a real store: it answers lines
// only while its unsent answers are under the mark (a client that does not
// read holds the rest of its lines back), and a line whose answer cannot be
// produced costs that line alone.
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { type KvCommand, KvService } from '../src/kv-service.js';
import { KvStore } from '../src/kv-store.js';
import { LineConnection, type LineConnectionOptions } from '../src/line-connection.js';
import { LineClient, openFds, tempDir } from './harness.js';

const tmp = tempDir('line-connection');
const fdsBefore = openFds();
let n = 0;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => tmp.remove());

/** A server whose every connection is a LineConnection over `execute`; a client connected to it. */
async function serve(
  options: Partial<LineConnectionOptions> & Pick<LineConnectionOptions, 'execute'>,
) {
  const path = tmp.path(`line${++n}.sock`);
  const connections: LineConnection[] = [];
  const server: Server = createServer((socket) => {
    connections.push(
      new LineConnection(socket, new Uint8Array(0), { maxLineBytes: 1024, ...options }),
    );
  });
  server.listen(path);
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const c of connections) c.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const client = await LineClient.connect(path);
  cleanups.push(() => client.close());
  return client;
}

function storeService() {
  const service = new KvService(new KvStore(), { connections: () => 1, handoffs: () => 0 });
  return { service, execute: (command: KvCommand) => service.executeNow(command) };
}

describe('LineConnection', () => {
  it('answers ERROR INTERNAL to a line whose answer cannot be produced, and serves the next line', async () => {
    const { execute } = storeService();
    const failures: unknown[] = [];
    const client = await serve({
      execute: (command) => {
        if (command.op === 'get' && Buffer.from(command.key).toString() === 'boom') {
          throw new TypeError('a bug in the handler');
        }
        return execute(command);
      },
      onAnswerError: (error) => failures.push(error),
    });
    client.send('SET k v\nGET boom\nGET k\n');
    expect(await client.line()).toBe('STORED');
    // Not the error's own message: that is for the daemon's log, not for clients.
    expect(await client.line()).toBe('ERROR INTERNAL the daemon could not answer this line');
    expect(await client.line()).toBe('VALUE v');
    expect(failures).toEqual([new TypeError('a bug in the handler')]);
    expect(await client.ask('GET boom')).toMatch(/^ERROR INTERNAL /);
  });

  it('answers no line while its unsent answers are over the mark, and loses none of them', async () => {
    const { service, execute } = storeService();
    const value = 'x'.repeat(100 * 1024);
    service.store.set(Buffer.from('big'), Buffer.from(value));
    let executed = 0;
    const client = await serve({
      maxQueuedAnswerBytes: 256 * 1024,
      execute: (command) => {
        executed++;
        return execute(command);
      },
    });
    client.socket.pause();
    client.send('GET big\n'.repeat(200));
    // The 200 lines arrive in one read, and the daemon goes as far as it
    // will with them at once: unsent answers up to the mark, plus what the
    // kernel took (a few hundred KiB on a Unix socket).
    await vi.waitFor(() => expect(executed).toBeGreaterThan(0));
    await new Promise((resolve) => setImmediate(resolve));
    expect(executed).toBeLessThan(20);
    client.socket.resume();
    for (let i = 0; i < 200; i++) expect(await client.line()).toBe(`VALUE ${value}`);
    expect(executed).toBe(200);
  });

  it('leaves no file descriptor behind', async () => {
    await vi.waitFor(() => expect(openFds()).toBe(fdsBefore));
  });
});
