// Where daemon logs live: defaultStateDir (XDG_STATE_HOME, else
// ~/.local/state/handoff, as the systemd unit's default), the per-service
// file names, and the record format the writer and reader share.
import { describe, expect, it } from 'vitest';
import { lastLines, withOutputTail } from '../src/logs/failure-tail.js';
import { decodeRecord, encodeRecord, logFilePath } from '../src/logs/record.js';
import { defaultStateDir } from '../src/paths.js';
import { DEFAULT_UNIT_STATE_DIR } from '../src/systemd/units.js';

describe('defaultStateDir', () => {
  it('is $XDG_STATE_HOME/handoff when absolute, else ~/.local/state/handoff like the unit', () => {
    expect(defaultStateDir({ XDG_STATE_HOME: '/x/state' }, '/home/u')).toBe('/x/state/handoff');
    expect(defaultStateDir({ XDG_STATE_HOME: 'relative' }, '/home/u')).toBe(
      '/home/u/.local/state/handoff',
    );
    expect(defaultStateDir({ XDG_STATE_HOME: '' }, '/home/u')).toBe('/home/u/.local/state/handoff');
    // The unit's %h is the home directory.
    expect(defaultStateDir({}, '%h')).toBe(DEFAULT_UNIT_STATE_DIR);
  });
});

describe('log records', () => {
  it('names one file per service@version and round-trips records', () => {
    expect(logFilePath('/s', 'demo-kv', '1.2.3-rc.1')).toBe('/s/logs/demo-kv-1.2.3-rc.1.log');
    const r = { t: 1, pid: 2, stream: 'stderr', line: 'é "quoted"\t', split: true } as const;
    const encoded = encodeRecord(r);
    expect(encoded.endsWith('\n')).toBe(true);
    expect(encoded.slice(0, -1)).not.toContain('\n');
    expect(decodeRecord(encoded.trimEnd())).toEqual(r);
    expect(decodeRecord('{"t":1,"pid":2,"stream":"stdin","line":""}')).toBeNull();
    expect(decodeRecord('{"t":1,"pid":2,"stream":"stdout"')).toBeNull();
  });

  it('appends the last non-empty output lines to a refusal, cut to a readable length', () => {
    expect(withOutputTail('x failed', '')).toBe('x failed');
    const tail = ['a', '', 'b', 'c', 'd', 'e', 'f', 'g'.repeat(400)].join('\n');
    expect(lastLines(tail)).toEqual(['c', 'd', 'e', 'f', `${'g'.repeat(300)}…`]);
    expect(withOutputTail('x failed', 'one\ntwo\n')).toBe(
      'x failed; its last output:\n  one\n  two',
    );
  });
});
