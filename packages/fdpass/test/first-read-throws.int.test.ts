// What a 'message' listener throws from an accepted socket's first read (made
// in a microtask, before the socket is watched) reaches the process as an
// uncaught exception, like a throw from any later read. Its own process
// (fixtures/first-read-throws.ts), since the exception ends it.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllPeers, spawnPeer } from './process-helpers.js';

const fixture = fileURLToPath(new URL('./fixtures/first-read-throws.ts', import.meta.url));

afterEach(killAllPeers);

describe.skipIf(process.platform !== 'linux')('a listener that throws on the first read', () => {
  it('raises an uncaught exception, not an unhandled rejection', async () => {
    const peer = spawnPeer(process.execPath, [
      '--conditions=@handoff/source',
      '--import',
      'tsx',
      fixture,
    ]);
    const seen = (await peer.line((v: { how?: string }) => v.how !== undefined)) as {
      how: string;
      message: string;
      stack: string;
    };
    expect(seen.how).toBe('uncaughtException');
    expect(seen.message).toBe('thrown by a message listener');
    // From the read made before the socket was watched, not a later one.
    expect(seen.stack).toContain('startReading');
    expect(await peer.exited).toBe(0);
  });
});
