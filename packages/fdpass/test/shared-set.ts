// What the kernel says about the shared epoll set (native/nested_poll.h):
// its stats, and the fds registered in it. No vitest import, so test
// fixtures running as plain processes can use it too.
import { readFileSync } from 'node:fs';
import { loadNative, type NativeNestedPollStats } from '../src/native-loader.js';

export function sharedSetStats(): NativeNestedPollStats {
  const s = loadNative().nestedPollStats();
  if (s === null) throw new Error('no shared epoll set on this platform');
  return s;
}

/** The fd numbers the kernel lists as registered in the shared set. */
export function sharedSetFds(): number[] {
  const text = readFileSync(`/proc/self/fdinfo/${sharedSetStats().epollFd}`, 'utf8');
  return [...text.matchAll(/^tfd:\s+(\d+)/gm)].map((m) => Number(m[1]));
}
