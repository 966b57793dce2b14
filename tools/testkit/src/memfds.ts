// Small files that live only in memory (memfd_create), for tests that pass
// fds around and need to tell them apart afterwards: make one holding a
// text, read the text back, ask whether an fd number is still open.
import { fstatSync, readSync, writeSync } from 'node:fs';
import { memfdCreate } from '@handoff/backend-sdk';

/** A new memfd holding `text`; the caller owns (and closes or passes on) the fd. */
export function memfdWith(text: string, name = 'testkit'): number {
  const fd = memfdCreate(name);
  writeSync(fd, text);
  return fd;
}

/** The text at the start of `fd` (up to `max` bytes), read without moving its offset. */
export function fdText(fd: number, max = 256): string {
  const buf = Buffer.alloc(max);
  return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString();
}

/** Whether `fd` is open in this process. */
export function isOpenFd(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}
