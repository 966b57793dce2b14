// TestBroker and TestDaemon: a real server in its own temp dir, reachable
// while open, and nothing left on disk once closed.
import { existsSync } from 'node:fs';
import { FrameClient } from '@handoff/backend-sdk';
import { adminRequest } from '@handoff/broker';
import { AdminVerb } from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import { TestBroker } from '../src/test-broker.js';
import { TestDaemon } from '../src/test-daemon.js';

describe('TestBroker', () => {
  it('listens in its own temp dir, answers, and removes the dir on close', async () => {
    const broker = await TestBroker.start({ prefix: 'kit-broker' });
    expect(broker.socketPath).toBe(broker.tmp.path('run', 'broker.sock'));
    const reply = await adminRequest(broker.socketPath, { verb: AdminVerb.STATUS, json: true });
    expect(JSON.parse(reply.body)).toMatchObject({ socket_path: broker.socketPath });
    await broker.close();
    expect(existsSync(broker.tmp.dir)).toBe(false);
  });
});

describe('TestDaemon', () => {
  it('serves requests in its own temp dir, and removes the dir on close', async () => {
    const P = 0xf001;
    const daemon = await TestDaemon.start({
      prefix: 'kit-daemon',
      payloadProtocols: [P],
      onRequest: (frame) => frame.payload,
    });
    expect(daemon.endpoint).toBe(daemon.tmp.path('daemon.sock'));
    const client = await FrameClient.connect(daemon.endpoint);
    try {
      const answer = await client.request(P, new TextEncoder().encode('echo'));
      expect(new TextDecoder().decode(answer.payload)).toBe('echo');
    } finally {
      client.close();
    }
    await daemon.close();
    expect(existsSync(daemon.tmp.dir)).toBe(false);
  });
});
