// Events to an async iterator with backpressure, for any pausable emitter of
// this package (FdSocket's messages, SessionReceiver's sessions). Owns the
// items it buffered: leaving the loop early disposes of them and closes the
// source. What an item is, and how to dispose of it, is the caller's.
import type { EventEmitter } from 'node:events';

/** Items buffered before the source is paused; it resumes below half of it. */
const ITERATOR_HIGH_WATER = 64;

/** What the iterator drives: its events, flow control and close. */
export type IterableSource = EventEmitter & { pause(): void; resume(): void; close(): void };

/**
 * Yields each `event` until 'end' or 'close'; throws the first 'error'.
 * Buffers up to 64 items, pausing the source beyond that. Leaving the loop
 * (break/return/throw) or finishing it closes the source and hands every
 * item still buffered to `dispose`.
 */
export function eventIterator<T>(
  source: IterableSource,
  event: string,
  dispose: (item: T) => void,
): AsyncIterableIterator<T> {
  const buffered: T[] = [];
  let failure: unknown = null;
  let done = false;
  let wake: (() => void) | null = null;
  let pausedByUs = false;
  const onItem = (item: T) => {
    buffered.push(item);
    if (buffered.length >= ITERATOR_HIGH_WATER && !pausedByUs) {
      pausedByUs = true;
      source.pause();
    }
    wake?.();
  };
  const onError = (err: unknown) => {
    if (failure === null) failure = err;
    wake?.();
  };
  const onEnd = () => {
    done = true;
    wake?.();
  };
  source.on(event, onItem);
  source.on('error', onError);
  source.on('end', onEnd);
  source.on('close', onEnd);
  const detach = () => {
    source.off(event, onItem);
    source.off('error', onError);
    source.off('end', onEnd);
    source.off('close', onEnd);
  };
  const finish = () => {
    detach();
    for (const item of buffered.splice(0)) dispose(item);
    source.close();
  };
  const iterator: AsyncIterableIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (buffered.length > 0) {
          const value = buffered.shift() as T;
          if (pausedByUs && buffered.length < ITERATOR_HIGH_WATER / 2) {
            pausedByUs = false;
            source.resume();
          }
          return { value, done: false };
        }
        if (failure !== null) {
          const err = failure;
          finish();
          throw err;
        }
        if (done) {
          finish();
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    },
    async return(): Promise<IteratorResult<T>> {
      finish();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
