// The daemon on a real socket, in this process: framed requests of its own
// payload protocol are answered, identity probes too, and a request it
// cannot answer costs only that connection.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameClient, probeDaemon } from '@handoff/backend-sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../src/daemon.js';
import { PAYLOAD_PROTOCOL } from '../src/service.js';

let dir: string;
let daemon: Daemon;
const clients: FrameClient[] = [];

beforeEach(async () => {
  // mkdtemp makes it 0700: the daemon refuses a directory others can enter.
  dir = mkdtempSync(join(tmpdir(), 'daemon-test-'));
  daemon = await startDaemon({ endpoint: join(dir, 'd.sock'), identity: { entryScript: null } });
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await daemon.close();
  rmSync(dir, { recursive: true, force: true });
});

async function client(): Promise<FrameClient> {
  const socket = connect(daemon.endpoint);
  await once(socket, 'connect');
  const frameClient = new FrameClient(socket);
  clients.push(frameClient);
  return frameClient;
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

describe('the daemon', () => {
  it('answers a framed request of its payload protocol', async () => {
    const reply = await (await client()).request(PAYLOAD_PROTOCOL.id, text('tests'));
    expect(str(reply.payload)).toBe('hello, tests!');
  });

  it('answers many requests on one connection, in any order they finish', async () => {
    const c = await client();
    const names = Array.from({ length: 50 }, (_, i) => `n${i}`);
    const replies = await Promise.all(names.map((n) => c.request(PAYLOAD_PROTOCOL.id, text(n))));
    expect(replies.map((r) => str(r.payload))).toEqual(names.map((n) => `hello, ${n}!`));
  });

  it('answers identity probes with this process', async () => {
    const verified = await probeDaemon(daemon.endpoint, { pid: process.pid });
    expect(verified.identity.pid).toBe(process.pid);
    expect(verified.peer.pid).toBe(process.pid);
  });

  it('drops a connection that sends what it cannot answer, and serves on', async () => {
    const bad = await client();
    await expect(
      bad.request(PAYLOAD_PROTOCOL.id, new Uint8Array([0xff, 0xfe])),
    ).rejects.toMatchObject({ code: 'CLOSED' });
    const other = await client();
    await expect(
      other.request(PAYLOAD_PROTOCOL.id ^ 1, text('wrong protocol')),
    ).rejects.toMatchObject({ code: 'CLOSED' });
    const good = await client();
    expect(str((await good.request(PAYLOAD_PROTOCOL.id, text(''))).payload)).toBe('hello, world!');
  });
});
