// serveDaemon on a listener someone else bound (server/inherited-listener.ts):
// adopted from the listenFd option or $HANDOFF_LISTEN_FD (when
// $HANDOFF_ENDPOINT names the endpoint; the variable is then unset), served
// with connections queued before it started, its socket file left alone on
// close; a bad fd is a typed error. Without one, the daemon binds its own.
import { existsSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { closeFd, duplicateFd, FdServer } from '@handoff/fdpass';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BROKER_ENV,
  type DaemonIdentity,
  FrameClient,
  InheritedListenerError,
  serveDaemon,
} from '../src/index.js';
import { identityFor, openFds, str, tempDir, text } from './harness.js';

const P = 0xf001;
const tmp = tempDir('inherit');
let identity: DaemonIdentity;
let counter = 0;

beforeAll(async () => {
  identity = await identityFor(tmp.path('x.sock'));
}, 60_000);
afterEach(() => {
  delete process.env[BROKER_ENV.listenFd];
  delete process.env[BROKER_ENV.endpoint];
});
afterAll(() => tmp.remove());

/** A listening socket bound to a fresh path, as a broker binds it: a bare fd, polled by nobody. */
async function bound(kind: 'stream' | 'seqpacket' = 'stream') {
  const endpoint = tmp.path(`d${++counter}.sock`);
  const server = await FdServer.listen(endpoint, { kind, mode: 0o600 });
  server.pause();
  const fd = duplicateFd(server.fd);
  return { endpoint, fd, server };
}

const options = (endpoint: string) => ({
  endpoint,
  identity: {
    ...identity,
    process: { ...identity.process, ipcEndpoint: { namespaceId: '', path: endpoint } },
  },
  payloadProtocols: [P],
  onRequest: (frame: { payload: Uint8Array }) => frame.payload,
});

describe('serveDaemon on an inherited listener', () => {
  it('adopts $HANDOFF_LISTEN_FD for its endpoint, serves a client that queued before, and removes the file when it closes', async () => {
    const before = openFds();
    const { endpoint, fd, server: binder } = await bound();
    // Queued in the backlog before the daemon serves.
    const early = connect(endpoint);
    process.env[BROKER_ENV.endpoint] = endpoint;
    process.env[BROKER_ENV.listenFd] = String(fd);
    const daemon = await serveDaemon(options(endpoint));
    expect(process.env[BROKER_ENV.listenFd]).toBeUndefined();
    const client = new FrameClient(early);
    expect(str((await client.request(P, text('queued'))).payload)).toBe('queued');
    client.close();
    // Its binder still holds the socket: the file stays while the daemon serves.
    expect(existsSync(endpoint)).toBe(true);
    await daemon.close({ deadlineMs: 100 });
    // The daemon was its last user: no dead socket file is left behind.
    expect(existsSync(endpoint)).toBe(false);
    binder.close();
    expect(openFds()).toBe(before);
  });

  it('ignores $HANDOFF_LISTEN_FD meant for another endpoint, and binds its own', async () => {
    const { fd, server: binder } = await bound();
    const endpoint = tmp.path(`own${++counter}.sock`);
    process.env[BROKER_ENV.endpoint] = tmp.path('someone-else.sock');
    process.env[BROKER_ENV.listenFd] = String(fd);
    const daemon = await serveDaemon(options(endpoint));
    expect(process.env[BROKER_ENV.listenFd]).toBe(String(fd));
    expect(existsSync(endpoint)).toBe(true);
    await daemon.close({ deadlineMs: 100 });
    expect(existsSync(endpoint)).toBe(false);
    closeFd(fd);
    binder.close();
  });

  it('refuses a listener bound to another path (WRONG_ENDPOINT) and an fd that is not one (NOT_A_LISTENER)', async () => {
    const before = openFds();
    const packets = await bound('seqpacket');
    const seqpacket = await serveDaemon({
      ...options(packets.endpoint),
      listenFd: packets.fd,
    }).catch((e) => e);
    expect(seqpacket).toMatchObject({ name: 'InheritedListenerError', code: 'NOT_A_LISTENER' });
    expect(seqpacket.message).toContain('seqpacket');
    closeFd(packets.fd);
    packets.server.close();
    const { fd, server: binder } = await bound();
    const endpoint = tmp.path(`other${++counter}.sock`);
    const wrong = await serveDaemon({ ...options(endpoint), listenFd: fd }).catch((e) => e);
    expect(wrong).toBeInstanceOf(InheritedListenerError);
    expect(wrong.code).toBe('WRONG_ENDPOINT');
    // A refused fd is left to its owner.
    closeFd(fd);
    binder.close();
    const file = openSync(tmp.path('plain'), 'w');
    const notSocket = await serveDaemon({ ...options(endpoint), listenFd: file }).catch((e) => e);
    expect(notSocket).toMatchObject({ name: 'InheritedListenerError', code: 'NOT_A_LISTENER' });
    closeFd(file);
    process.env[BROKER_ENV.endpoint] = endpoint;
    process.env[BROKER_ENV.listenFd] = 'three';
    await expect(serveDaemon(options(endpoint))).rejects.toMatchObject({ code: 'BAD_LISTEN_FD' });
    expect(existsSync(endpoint)).toBe(false);
    expect(openFds()).toBe(before);
  });
});
