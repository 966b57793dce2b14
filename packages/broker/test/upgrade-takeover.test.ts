// The successor's side of the upgrade channel (src/upgrade/takeover.ts)
// against an old broker played by the test over a real seqpacket pair:
// a valid state arrives with every fd where it belongs; a state that does
// not hold together (a channel of no backend, a listener twice, garbage,
// a missing listener) is refused with every received fd closed.
import { closeFd, duplicateFd, FdServer, FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { openFds } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { UpgradeError } from '../src/upgrade/errors.js';
import { UPGRADE_FD_ENV } from '../src/upgrade/successor.js';
import { UpgradeTakeover } from '../src/upgrade/takeover.js';
import { tempDir } from './harness.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A takeover on one end of a pair; the other end is the old broker, played here. */
function pair() {
  const [old, theirs] = FdSocket.pair('seqpacket');
  const env: NodeJS.ProcessEnv = { [UPGRADE_FD_ENV]: String(duplicateFd(theirs.fd)) };
  theirs.close();
  const takeover = UpgradeTakeover.fromEnv(env);
  if (takeover === null) throw new Error('no takeover');
  expect(env[UPGRADE_FD_ENV]).toBeUndefined();
  const received: ReceivedMessage[] = [];
  old.on('message', (m: ReceivedMessage) => received.push(m));
  const send = (message: object, fds: number[] = []) =>
    old.write(Buffer.from(JSON.stringify({ v: 1, ...message })), fds);
  cleanups.push(() => {
    takeover.close();
    old.close();
  });
  return { takeover, old, received, send };
}

async function listener(): Promise<FdServer> {
  const tmp = tempDir('takeover');
  const server = await FdServer.listen(tmp.path('l.sock'), { kind: 'stream' });
  cleanups.push(() => {
    server.close();
    tmp.remove();
  });
  return server;
}

const backend = {
  kind: 'backend',
  key: 'echo@1.0.0',
  name: 'echo',
  version: '1.0.0',
  endpoint: '/x/echo.sock',
  pid: 1234,
  identity: '',
  startedAt: 1,
  routed: 2,
};

describe('UpgradeTakeover', () => {
  it('says hello and takes a valid state, each fd where it belongs', async () => {
    const client = await listener();
    const control = await listener();
    const { takeover, received, send } = pair();
    const state = takeover.receive();
    await expect.poll(() => received.length).toBe(1);
    expect(JSON.parse(received[0]!.data.toString())).toEqual({
      v: 1,
      type: 'hello',
      pid: process.pid,
    });
    const [ourEnd, daemonEnd] = FdSocket.pair('seqpacket');
    cleanups.push(() => {
      ourEnd.close();
      daemonEnd.close();
    });
    send(
      {
        type: 'state',
        last: false,
        items: [
          { kind: 'listener', role: 'client', path: client.path, owned: true },
          { kind: 'listener', role: 'control', path: control.path, owned: true },
        ],
      },
      [client.fd, control.fd],
    );
    send(
      {
        type: 'state',
        last: true,
        items: [backend, { kind: 'channel', backend: backend.key, registration: '' }],
      },
      [ourEnd.fd],
    );
    const taken = await state;
    expect(taken.client.path).toBe(client.path);
    expect(taken.control.owned).toBe(true);
    expect(taken.backends).toHaveLength(1);
    expect(taken.backends[0]!.item.pid).toBe(1234);
    expect(taken.backends[0]!.channel).not.toBeNull();
    for (const fd of [taken.client.fd, taken.control.fd, taken.backends[0]!.channel!.fd])
      closeFd(fd);
  });

  it.each([
    ['a channel of no backend', [{ kind: 'channel', backend: 'nobody@1', registration: '' }], 1],
    [
      'a listener twice',
      [
        { kind: 'listener', role: 'client', path: '/a', owned: true },
        { kind: 'listener', role: 'client', path: '/a', owned: true },
      ],
      2,
    ],
    ['no control listener', [{ kind: 'listener', role: 'client', path: '/a', owned: true }], 1],
    ['an identity that is not a DaemonProcess', [{ ...backend, identity: '/////w==' }], 0],
  ])('refuses %s, closing every fd it received', async (_name, items, fdCount) => {
    const server = await listener();
    const before = openFds();
    const { takeover, received, send } = pair();
    const state = takeover.receive().then(
      () => null,
      (e: unknown) => e,
    );
    await expect.poll(() => received.length).toBe(1);
    const baseline = openFds();
    send({ type: 'state', last: true, items }, Array(fdCount).fill(server.fd));
    const error = await state;
    expect(error).toBeInstanceOf(UpgradeError);
    expect((error as UpgradeError).code).toBe('TAKEOVER_FAILED');
    // Every fd that came with the state is closed again.
    expect(openFds()).toBe(baseline);
    takeover.close();
    await expect.poll(() => openFds()).toBeLessThanOrEqual(before + 1);
  });

  it('refuses garbage from the old broker and tells it why', async () => {
    const { takeover, received, old } = pair();
    const state = takeover.receive().then(
      () => null,
      (e: unknown) => e,
    );
    await expect.poll(() => received.length).toBe(1);
    old.write(Buffer.from('not json'));
    const error = await state;
    expect((error as UpgradeError).code).toBe('TAKEOVER_FAILED');
    await expect.poll(() => received.length).toBe(2);
    expect(JSON.parse(received[1]!.data.toString())).toMatchObject({ type: 'failed' });
  });
});
