// The whole path a user sees: a real broker with this daemon's service
// definition starts the daemon (src/daemon-main.ts, a child process) when
// the first client asks, hands the client's connection over to it, and the
// daemon answers on it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Broker, parseServiceDefinition, startBroker } from '@handoff/broker';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ask } from '../src/client.js';
import { SERVICE_NAME, SERVICE_VERSION } from '../src/service.js';
import { serviceDefinition } from '../src/service-definition.js';

let dir: string;
let broker: Broker;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'broker-test-'));
  broker = await startBroker({
    socketPath: join(dir, 'broker.sock'),
    services: [serviceDefinition()],
    watchConfig: false,
    logger: pino({ level: 'silent' }),
  });
});

afterAll(async () => {
  // Stops the daemon it started, too.
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('through a broker', () => {
  it('has a service definition the broker accepts', () => {
    expect(
      parseServiceDefinition(serviceDefinition({ idleTimeoutSecs: 60 }), 'test'),
    ).toMatchObject({
      name: SERVICE_NAME,
      version: SERVICE_VERSION,
      handoff: true,
      idleTimeoutSecs: 60,
    });
  });

  it('starts the daemon on demand and hands the connection over to it', async () => {
    const first = await ask('first', { brokerPath: broker.socketPath });
    expect(first).toEqual({ answer: 'hello, first!', route: 'handoff' });
    // The daemon is running now: the next client goes straight to it.
    const second = await ask('second', { brokerPath: broker.socketPath });
    expect(second).toEqual({ answer: 'hello, second!', route: 'handoff' });
    expect(broker.registry.list().map((b) => b.definition.name)).toEqual([SERVICE_NAME]);
  });
});
