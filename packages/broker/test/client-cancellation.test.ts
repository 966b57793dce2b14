// connectService's own cancellation (src/client/cancellation.ts), the
// AbortController stand-in its deadline and the caller's signal go through:
// each listener runs once, removed ones never, late ones not at all, and a
// back-off wait (pause) ends with its reason and leaves no timer.
import { describe, expect, it } from 'vitest';
import { CallCancellation } from '../src/client/cancellation.js';
import { pause } from '../src/client/retry.js';

describe('CallCancellation', () => {
  it('runs each listener once with the first reason; removed and late listeners never', () => {
    const c = new CallCancellation();
    const heard: string[] = [];
    const a = () => heard.push(`a:${(c.reason as Error).message}`);
    const b = () => heard.push('b');
    c.addEventListener('abort', a);
    c.addEventListener('abort', b);
    c.removeEventListener('abort', b);
    expect(c.aborted).toBe(false);
    c.cancel(new Error('first'));
    c.cancel(new Error('second'));
    expect(heard).toEqual(['a:first']);
    expect(c.aborted).toBe(true);
    expect((c.reason as Error).message).toBe('first');
    c.addEventListener('abort', b);
    c.cancel(new Error('third'));
    expect(heard).toEqual(['a:first']);
  });

  it('removes any one listener, the last added or not, and ignores one it never had', () => {
    const c = new CallCancellation();
    const heard: string[] = [];
    const make = (name: string) => () => heard.push(name);
    const [a, b, d] = [make('a'), make('b'), make('d')];
    for (const listener of [a, b, d]) c.addEventListener('abort', listener);
    c.removeEventListener('abort', b);
    c.removeEventListener('abort', make('never added'));
    c.removeEventListener('abort', d);
    c.addEventListener('abort', d);
    c.cancel(new Error('now'));
    expect(heard).toEqual(['a', 'd']);
  });

  it('keeps the order of listeners added after the only one was removed', () => {
    const c = new CallCancellation();
    const heard: string[] = [];
    const make = (name: string) => () => heard.push(name);
    const [a, b, d, e] = [make('a'), make('b'), make('d'), make('e')];
    c.addEventListener('abort', a);
    c.removeEventListener('abort', a);
    c.addEventListener('abort', b);
    c.addEventListener('abort', d);
    c.removeEventListener('abort', b);
    c.addEventListener('abort', e);
    c.addEventListener('abort', a);
    c.cancel(new Error('now'));
    expect(heard).toEqual(['d', 'e', 'a']);
  });

  it('ends a back-off wait with its reason, leaving no timer', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const c = new CallCancellation();
    const waiting = pause(60_000, c);
    expect(timers()).toBe(before + 1);
    c.cancel(new Error('deadline'));
    await expect(waiting).rejects.toThrow('deadline');
    expect(timers()).toBe(before);
    await expect(pause(10, c)).rejects.toThrow('deadline');
  });
});
