// Broker-owned daemon sockets (lifecycle/owned-socket.ts), with real
// daemons: the endpoint exists, 0600, from the moment the daemon is spawned,
// and a client connecting directly during its warm-up waits in the backlog
// and is served; without ownDaemonSockets the same client fails (ENOENT).
// The broker removes the socket file once the daemon is gone.
import { existsSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { FrameClient } from '@handoff/backend-sdk';
import { describe, expect, it, vi } from 'vitest';
import type { Backend, BackendRegistry } from '../src/backend-registry.js';
import { connectService } from '../src/client/connect-service.js';
import { liveBrokers, P } from './broker-session.js';
import { echoService, killPid, str, tempDir, text } from './harness.js';

const { broker, dirs } = liveBrokers();

function connectTo(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function warmingBroker(ownDaemonSockets: boolean) {
  const dir = tempDir('owned');
  dirs.push(dir);
  const pidFile = dir.path('daemon.pid');
  const b = await broker(
    [echoService('echo', {}, ['--warmup-ms', '1500', '--pid-file', pidFile, '--pid-prefix'])],
    { ownDaemonSockets },
  );
  const registry = b.registry as unknown as BackendRegistry;
  // A Hello starts the daemon; it answers once the daemon serves.
  const hello = connectService('echo', {
    version: '1.0.0',
    brokerPath: b.socketPath,
    timeoutMs: 30_000,
  });
  // The daemon process runs (it wrote its pid) and is still warming up.
  await vi.waitFor(() => expect(existsSync(pidFile)).toBe(true), { timeout: 20_000 });
  const endpoint = registry.endpointFor(b.definitions()[0]!);
  return { b, registry, hello, endpoint };
}

describe('broker-owned daemon sockets', () => {
  it('queues a client that connects during the warm-up, and serves it', async () => {
    const { registry, hello, endpoint } = await warmingBroker(true);
    expect(statSync(endpoint).mode & 0o777).toBe(0o600);
    const socket = await connectTo(endpoint);
    // Connected while the daemon is not serving yet.
    expect(registry.list().map((x: Backend) => x.state)).toEqual(['starting']);
    const client = new FrameClient(socket);
    const answer = str((await client.request(P, text('early'))).payload);
    const pid = registry.list()[0]!.pid;
    expect(answer).toBe(`${pid}:early`);
    client.close();
    const { socket: routed } = await hello;
    routed.destroy();
  });

  it('without them, the same client finds no socket (the baseline)', async () => {
    const { hello, endpoint } = await warmingBroker(false);
    await expect(connectTo(endpoint)).rejects.toMatchObject({ code: 'ENOENT' });
    const { socket } = await hello;
    socket.destroy();
  });

  it('removes the socket file it bound once the daemon is gone', async () => {
    const b = await broker([echoService('echo')]);
    const registry = b.registry as unknown as BackendRegistry;
    const { socket } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    socket.destroy();
    const [backend] = registry.list();
    expect(existsSync(backend!.endpoint)).toBe(true);
    const gone = new Promise((resolve) => registry.once('gone', resolve));
    await killPid(backend!.pid!);
    await gone;
    // The SIGKILLed daemon could not remove it; the broker did (it was the one it bound).
    expect(existsSync(backend!.endpoint)).toBe(false);
  });
});
