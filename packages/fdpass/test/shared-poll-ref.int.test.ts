// Ref/unref through the shared epoll set (native/nested_poll.h): the one
// uv_poll_t behind every fresh socket keeps the loop alive while, and only
// while, some ref'd socket watches something — what a uv_poll_t per socket
// did. Each case is its own process (fixtures/ref-probe.ts), since only a
// process exiting on its own shows the loop's liveness.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllPeers, spawnPeer } from './process-helpers.js';

const probe = fileURLToPath(new URL('./fixtures/ref-probe.ts', import.meta.url));
const run = (mode: string) =>
  spawnPeer(process.execPath, ['--conditions=@handoff/source', '--import', 'tsx', probe, mode]);

afterEach(killAllPeers);

describe.skipIf(process.platform !== 'linux')('shared epoll set and the loop', () => {
  // busy-*: the same after the socket has moved to a uv_poll_t of its own.
  it.each(['ref', 'unref-then-ref', 'busy-ref', 'busy-unref-then-ref'])(
    '%s: a watching socket keeps the process alive until its message',
    async (mode) => {
      const peer = run(mode);
      const ready = await peer.line((v: { ready?: string }) => v.ready === mode);
      // Busy, the socket has left the shared set by now.
      if (mode.startsWith('busy-')) expect(ready).toMatchObject({ shared: false });
      await expect(peer.line((v: { got?: boolean }) => v.got === true)).resolves.toBeTruthy();
      expect(await peer.exited).toBe(0);
    },
  );

  it.each(['unref', 'ref-then-stop', 'busy-unref', 'busy-ref-then-stop'])(
    '%s: nothing keeps the loop alive, so the process exits before the message',
    async (mode) => {
      const peer = run(mode);
      expect(await peer.exited).toBe(0);
      expect(peer.stderr()).toBe('');
      await expect(peer.line((v: { got?: boolean }) => v.got === true)).rejects.toThrow(/exited/);
    },
  );
});
