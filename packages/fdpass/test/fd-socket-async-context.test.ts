// A socket's events run in the async context the socket was made in, as a
// net.Socket's do: a daemon that keeps request state in AsyncLocalStorage
// finds it in its 'message' listeners, however the socket's events arrive.
import { AsyncLocalStorage, executionAsyncId } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { FdSocket } from '../src/index.js';

describe('FdSocket and async context', () => {
  it("delivers 'message' in the AsyncLocalStorage store active when the socket was made", async () => {
    const als = new AsyncLocalStorage<string>();
    const [a, b] = als.run('made-here', () => FdSocket.pair('stream'));
    const seen = new Promise<{ store: string | undefined; id: number }>((resolve) =>
      b.once('message', () => resolve({ store: als.getStore(), id: executionAsyncId() })),
    );
    // Written from outside the store: the listener's store can only come from the socket.
    expect(als.getStore()).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    a.write(new Uint8Array([1]));
    const { store, id } = await seen;
    expect(store).toBe('made-here');
    // Inside a callback of its own, not the test's.
    expect(id).not.toBe(0);
    a.close();
    b.close();
  });
});
