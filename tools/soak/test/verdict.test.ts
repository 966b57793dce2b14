// The soak's judgement, without processes: which errors a daemon kill
// excuses (tally.ts), how RSS growth after warm-up is read (sampler.ts),
// and how --duration is spelled (options.ts).
import { describe, expect, it } from 'vitest';
import { parseDuration, parseSoakArgs, UsageError } from '../src/options.ts';
import { RssTrack } from '../src/sampler.ts';
import {
  AnswerMismatch,
  ConnectionLost,
  OutboundNotBounded,
  Tally,
  TaskTimeout,
} from '../src/tally.ts';

const closed = () => Object.assign(new Error('connection closed'), { code: 'CLOSED' });

describe('Tally', () => {
  it('excuses a connection error of a task that overlapped a kill, and nothing else', () => {
    expect.assertions(8);
    const tally = new Tally(0);
    tally.recordKill(10_000);
    // Ran across the kill: expected.
    expect(tally.error('handoff', closed(), 3, 9_000, 10_500)).toBe('expected');
    // Began 1.5 s after the kill (the broker had not noticed yet): expected.
    expect(tally.error('line', new ConnectionLost('gone'), 0, 11_500, 12_000)).toBe('expected');
    // A wrong answer is never a consequence of a kill.
    expect(tally.error('handoff', new AnswerMismatch('bytes differ'), 1, 9_000, 10_500)).toBe(
      'failure',
    );
    // Neither is a hang, nor unbounded buffering.
    expect(tally.error('slow_reader', new TaskTimeout('hung'), 0, 9_000, 30_000)).toBe('failure');
    expect(tally.error('slow_reader', new OutboundNotBounded('grew'), 0, 9_000, 10_500)).toBe(
      'failure',
    );
    // Closed long after the kill: a failure.
    expect(tally.error('handoff', closed(), 0, 20_000, 20_100)).toBe('failure');
    // A probe whose daemon vanished before /proc was read: the cause says so.
    const gone = Object.assign(new Error('no /proc/42'), { code: 'NO_SUCH_PROCESS' });
    const probe = Object.assign(new Error('cannot read the start time', { cause: gone }), {
      code: 'START_TIME',
    });
    expect(tally.error('probe', probe, 1, 9_900, 10_100)).toBe('expected');
    // The same code without such a cause is a real mismatch.
    const lie = Object.assign(new Error('started at another time'), { code: 'START_TIME' });
    expect(tally.error('probe', lie, 1, 9_900, 10_100)).toBe('failure');
  });

  it('counts requests, failures and expected faults by kind, and keeps examples', () => {
    const tally = new Tally(0);
    tally.ok('admin', 3);
    tally.recordKill(1000);
    tally.error('probe', closed(), 1, 900, 1100);
    tally.error('line', new AnswerMismatch('line 2 differs'), 1, 5000, 5100);
    expect(tally.totalRequests).toBe(5);
    expect(tally.requests.admin).toBe(3);
    expect(tally.expectedByKind.probe).toBe(1);
    expect(tally.failuresByKind.line).toBe(1);
    expect(tally.failures).toBe(1);
    expect(tally.examples).toEqual([
      { kind: 'line', code: 'ANSWER_MISMATCH', message: 'line 2 differs', at_s: 5.1 },
    ]);
    expect(tally.failureCounts()).toEqual({ 'line ANSWER_MISMATCH': 1 });
  });

  it('keeps a bounded number of examples however many failures come', () => {
    const tally = new Tally(0);
    for (let i = 0; i < 10_000; i++) tally.error('handoff', new AnswerMismatch(`#${i}`), 0, i, i);
    expect(tally.failures).toBe(10_000);
    expect(tally.examples.length).toBe(20);
  });
});

describe('RssTrack', () => {
  it('compares the median of the last samples with the largest warm-up sample', () => {
    const track = new RssTrack(1, 0, 2000);
    for (const [t, rss] of [
      [500, 100_000],
      [1500, 120_000],
      [2500, 121_000],
      [3500, 500_000], // one spike at the end is not growth
      [4500, 125_000],
      [5500, 126_000],
    ] as const) {
      track.add(t, rss);
    }
    expect(track.result(6000)).toEqual({ warm_kib: 120_000, end_kib: 125_000, growth_pct: 4.2 });
  });

  it('reports steady growth, and nothing before the warm-up is over', () => {
    const track = new RssTrack(1, 0, 2000);
    expect(track.result(1000)).toBeNull();
    for (let t = 0; t <= 10_000; t += 1000) track.add(t, 100_000 + t * 10);
    const result = track.result(10_000)!;
    expect(result.warm_kib).toBe(120_000);
    expect(result.end_kib).toBe(180_000);
    expect(result.growth_pct).toBe(50);
  });
});

describe('options', () => {
  it('reads seconds, minutes and hours', () => {
    expect(parseDuration('60', 0)).toBe(60_000);
    expect(parseDuration('90s', 0)).toBe(90_000);
    expect(parseDuration('30m', 0)).toBe(1_800_000);
    expect(parseDuration('1h', 0)).toBe(3_600_000);
    expect(parseDuration('1.5m', 0)).toBe(90_000);
    expect(parseDuration(undefined, 60_000)).toBe(60_000);
  });

  it('refuses what is not a duration, and zero unless allowed', () => {
    for (const bad of ['', 'soon', '-5', '5d', '0', '1e3'])
      expect(() => parseDuration(bad, 0)).toThrow(UsageError);
    expect(parseDuration('0', 1, { allowZero: true })).toBe(0);
  });

  it('defaults to 60 s, 12 loops, a kill every 12 s and a 10 % RSS limit', () => {
    expect(parseSoakArgs([])).toEqual({
      durationMs: 60_000,
      concurrency: 12,
      killEveryMs: 12_000,
      sampleEveryMs: 1000,
      maxRssGrowthPct: 10,
    });
    expect(parseSoakArgs(['--json', '--duration', '30m']).valueOf()).toMatchObject({
      durationMs: 1_800_000,
    });
    expect(parseSoakArgs(['-h'])).toBe('help');
    expect(() => parseSoakArgs(['--concurrency', '0'])).toThrow(UsageError);
    expect(() => parseSoakArgs(['--bogus'])).toThrow(UsageError);
  });
});
