// The running-process drop-in end to end, in-process: a broker with
// rpCompat listens at RP's shared broker address (XDG_RUNTIME_DIR pointed
// at a temp dir), and a client connecting there reaches a service defined
// only by a `.servicedef`. Also: a live socket at that address refuses the
// start with nothing left open, and close removes only its own file.
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { FdServer } from '@handoff/fdpass';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker-api.js';
import { startBroker } from '../../src/broker-launch.js';
import { connectService } from '../../src/client/connect-service.js';
import type { ServiceConfigLoad } from '../../src/config/load.js';
import { rpSharedBrokerPath } from '../../src/rp-compat/address.js';
import { openFds, str, text } from '../harness.js';
import { P, rpSetup } from './rp-harness.js';

describe('serve --rp-compat (in-process)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('a client at the RP shared address reaches a service defined by a .servicedef', async () => {
    const setup = rpSetup('serve');
    cleanups.push(setup.tmp.remove);
    const rpPath = await rpSharedBrokerPath({ env: setup.env });
    expect(rpPath.startsWith(`${setup.env.XDG_RUNTIME_DIR}/running-process/broker/rpb-v1-`)).toBe(
      true,
    );
    // libuv opens one inotify fd per loop at the first fs.watch and keeps it: open it before counting.
    watch(setup.defs).close();
    const before = openFds();
    const broker: Broker = await startBroker({
      socketPath: setup.socket,
      rpCompat: { env: setup.env },
    });
    let closed = false;
    cleanups.push(() => (closed ? undefined : broker.close({ deadlineMs: 500 })));
    expect(broker.definitions().map((d) => [d.name, d.version])).toEqual([['rp-echo', '1.0.0']]);

    const session = await connectService('rp-echo', {
      version: '1.0.0',
      brokerPath: rpPath,
      timeoutMs: 30_000,
    });
    const client = new FrameClient(session.socket);
    expect(str((await client.request(P, text('via rp'))).payload)).toBe('via rp');
    client.close();
    // The main socket serves the same definitions.
    const main = await connectService('rp-echo', {
      version: '1.0.0',
      brokerPath: setup.socket,
      timeoutMs: 30_000,
    });
    const mainClient = new FrameClient(main.socket);
    expect(str((await mainClient.request(P, text('via main'))).payload)).toBe('via main');
    mainClient.close();

    await broker.close({ deadlineMs: 1000 });
    closed = true;
    expect(existsSync(rpPath), 'the RP socket file is removed at close').toBe(false);
    await expect.poll(() => openFds(), { timeout: 5000 }).toBe(before);
    // The .servicedef directory watch is closed too (its inotify fd is libuv's, shared).
    await expect
      .poll(() => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap'))
      .toEqual([]);
  });

  it('reloads when a .servicedef is added, and reports a refused one by file and field', async () => {
    const setup = rpSetup('watch');
    cleanups.push(setup.tmp.remove);
    const broker = await startBroker({ socketPath: setup.socket, rpCompat: { env: setup.env } });
    cleanups.push(() => broker.close({ deadlineMs: 500 }));
    const next = once(broker, 'config') as Promise<[ServiceConfigLoad]>;
    const copy = readFileSync(join(setup.defs, 'rp-echo.servicedef'));
    // The same bytes under another name: refused (service_name differs from the file).
    writeFileSync(join(setup.defs, 'rp-copy.servicedef'), copy);
    const [loaded] = await next;
    expect(loaded.errors.map((e) => [e.file, e.field])).toEqual([
      [join(setup.defs, 'rp-copy.servicedef'), 'service_name'],
    ]);
  });

  it('refuses to start when something already serves the RP address, leaving nothing open', async () => {
    const setup = rpSetup('in-use');
    cleanups.push(setup.tmp.remove);
    const rpPath = await rpSharedBrokerPath({ env: setup.env });
    mkdirSync(rpPath.slice(0, rpPath.lastIndexOf('/')), { recursive: true, mode: 0o700 });
    const other = await FdServer.listen(rpPath, { kind: 'stream' });
    cleanups.push(() => void other.close());
    const before = openFds();
    const error = await startBroker({
      socketPath: setup.socket,
      rpCompat: { env: setup.env },
    }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('ADDRESS_IN_USE');
    expect((error as Error).message).toContain(rpPath);
    expect(existsSync(setup.socket), 'the main socket was never bound').toBe(false);
    expect(openFds()).toBe(before);
  });

  it('refuses an RP directory that others can write, naming it', async () => {
    const setup = rpSetup('unsafe');
    cleanups.push(setup.tmp.remove);
    const dir = `${setup.env.XDG_RUNTIME_DIR}/running-process`;
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o777);
    const error = await startBroker({
      socketPath: setup.socket,
      rpCompat: { env: setup.env },
    }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('UNSAFE_DIRECTORY');
    expect((error as Error).message).toContain(dir);
  });

  it('leaves a socket file that is no longer its own (replaced) at close', async () => {
    const setup = rpSetup('replaced');
    cleanups.push(setup.tmp.remove);
    const rpPath = await rpSharedBrokerPath({ env: setup.env });
    const broker = await startBroker({
      socketPath: setup.socket,
      rpCompat: { env: setup.env, servicedefDir: false },
    });
    expect(broker.definitions()).toEqual([]);
    // Another broker (a successor) put its own socket in place meanwhile.
    const successor = await FdServer.listen(`${rpPath}.next`, { kind: 'stream' });
    cleanups.push(() => void successor.close());
    const { renameSync } = await import('node:fs');
    renameSync(`${rpPath}.next`, rpPath);
    await broker.close({ deadlineMs: 500 });
    expect(existsSync(rpPath), 'the successor’s file stays').toBe(true);
  });
});
