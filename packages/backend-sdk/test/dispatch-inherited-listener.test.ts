// The prefork dispatcher under a broker that bound its endpoint
// (HANDOFF_LISTEN_FD): openListeners serves the inherited listener instead
// of failing with EADDRINUSE on the live socket, including a client that
// queued before it started; without the variables it binds its own.
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { closeFd, duplicateFd, FdServer } from '@handoff/fdpass';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openListeners } from '../src/dispatch/listeners.js';
import { BROKER_ENV } from '../src/index.js';
import { openFds, tempDir } from './harness.js';

const tmp = tempDir('dispatch-inherit');
afterEach(() => {
  delete process.env[BROKER_ENV.listenFd];
  delete process.env[BROKER_ENV.endpoint];
});
afterAll(() => tmp.remove());

describe('dispatcher listeners', () => {
  it('serve a listener the broker bound, with the client that queued before', async () => {
    const before = openFds();
    const endpoint = tmp.path('d.sock');
    const binder = await FdServer.listen(endpoint, { kind: 'stream', mode: 0o600 });
    binder.pause();
    const fd = duplicateFd(binder.fd);
    const early = connect(endpoint);
    early.on('error', () => {});
    process.env[BROKER_ENV.endpoint] = endpoint;
    process.env[BROKER_ENV.listenFd] = String(fd);
    const { acceptors, endpoints } = await openListeners([{ path: endpoint }]);
    expect(process.env[BROKER_ENV.listenFd]).toBeUndefined();
    expect(endpoints).toEqual([{ index: 0, transport: 'unix', family: 'unix', path: endpoint }]);
    const accepted = new Promise<number[]>((resolve) => acceptors[0]!.once('connections', resolve));
    acceptors[0]!.resume();
    const fds = await accepted;
    expect(fds.length).toBe(1);
    for (const f of fds) closeFd(f);
    early.destroy();
    for (const a of acceptors) a.close();
    binder.close();
    expect(openFds()).toBe(before);
  });

  it('bind their own path when no broker passed one', async () => {
    const endpoint = tmp.path('own.sock');
    const { acceptors } = await openListeners([{ path: endpoint, mode: 0o600 }]);
    expect(existsSync(endpoint)).toBe(true);
    for (const a of acceptors) a.close();
  });
});
