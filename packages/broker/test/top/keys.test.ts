// top's keys: q / Q / Ctrl-C / Ctrl-D quit, s and S step the sort column
// (wrapping), digits pick one, escape sequences and other bytes do nothing.
import { describe, expect, it } from 'vitest';
import { keyActions, stepSort } from '../../src/top/keys.js';
import { SORT_KEYS } from '../../src/top/model.js';

describe('keyActions', () => {
  it('quits on q, Q, Ctrl-C and Ctrl-D, and reads nothing after', () => {
    for (const key of ['q', 'Q', '\x03', '\x04'])
      expect(keyActions(`${key}s`, 'service')).toEqual([{ kind: 'quit' }]);
  });

  it('steps the sort with s and S, wrapping at both ends', () => {
    expect(keyActions('s', 'service')).toEqual([{ kind: 'sort', key: 'daemons' }]);
    expect(keyActions('S', 'service')).toEqual([{ kind: 'sort', key: 'spawn_failed' }]);
    expect(keyActions('ss', 'spawn_failed')).toEqual([
      { kind: 'sort', key: 'service' },
      { kind: 'sort', key: 'daemons' },
    ]);
    expect(SORT_KEYS.map((k) => stepSort(stepSort(k, 1), -1))).toEqual([...SORT_KEYS]);
  });

  it('picks a column with a digit, 1 to 8; 9 and 0 do nothing', () => {
    expect(keyActions(Buffer.from('7'), 'service')).toEqual([{ kind: 'sort', key: 'refused' }]);
    expect(keyActions('1', 'p99')).toEqual([{ kind: 'sort', key: 'service' }]);
    expect(keyActions('90x', 'p99')).toEqual([]);
  });

  it('skips escape sequences whole: an arrow key is not an "A" or a sort', () => {
    expect(keyActions('\x1b[A\x1bOS\x1b[1;5Cs', 'service')).toEqual([
      { kind: 'sort', key: 'daemons' },
    ]);
  });
});
