// Shared by the broker's end-to-end tests (broker-routing, broker-faults):
// brokers started in-process in a private temp dir and closed after each test,
// and raw first frames for the tests that speak to the socket byte by byte.
import { once } from 'node:events';
import { connect } from 'node:net';
import {
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  FrameDecoder,
  Hello,
  HelloReply,
  requestFrame,
} from '@handoff/protocol';
import { TestBroker, type TestBrokerOptions } from '@handoff/testkit';
import { afterAll, afterEach } from 'vitest';
import type { tempDir } from './harness.js';

/** The payload protocol the echo daemon answers on. */
export const P = 0xf001;

/**
 * Registers the hooks that, after each test, run its cleanups and close its
 * brokers with their directories (and after the file, remove the directories
 * tests added to `dirs`); returns `broker` to start one, and those lists.
 */
export function liveBrokers() {
  const live: TestBroker[] = [];
  const dirs: ReturnType<typeof tempDir>[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
    await Promise.all(live.splice(0).map((b) => b.close(500)));
  });
  afterAll(() => {
    for (const d of dirs) d.remove();
  });

  async function broker(services: unknown[], options: Record<string, unknown> = {}) {
    const started = await TestBroker.start({ services, ...options } as TestBrokerOptions);
    live.push(started);
    return started.broker;
  }

  return { broker, dirs, cleanups };
}

/** Sends raw bytes as a first frame and returns the decoded HelloReply (or null on close). */
export async function rawHello(
  path: string,
  bytes: Uint8Array,
  { end = false } = {},
): Promise<HelloReply | null> {
  const socket = connect(path);
  await once(socket, 'connect');
  socket.write(bytes);
  if (end) socket.end();
  const decoder = new FrameDecoder();
  return new Promise((resolve) => {
    socket.on('data', (chunk) => {
      const [frame] = decoder.push(chunk);
      if (frame) {
        socket.destroy();
        resolve(HelloReply.decode(frame.payload));
      }
    });
    socket.on('close', () => resolve(null));
    socket.on('error', () => resolve(null));
  });
}

export const helloBytes = (patch: Partial<Hello> = {}) =>
  encodeFramed(
    requestFrame({
      payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
      requestId: 1n,
      payload: Hello.encode({
        clientMinProtocol: 1,
        clientMaxProtocol: 1,
        serviceName: 'echo',
        wantedVersion: '1.0.0',
        ...patch,
      }),
    }),
  );
