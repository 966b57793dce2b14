// The broker's log output (src/log-output.ts): JSON lines unless a terminal
// (auto) or asked (pretty / $HANDOFF_LOG_FORMAT); the pretty line's shape;
// the broker's pid once, and a daemon's as daemon_pid.
import { describe, expect, it } from 'vitest';
import {
  createBrokerLogger,
  parseLogFormat,
  prettyLine,
  resolveLogFormat,
} from '../src/log-output.js';

function sink(isTTY: boolean) {
  const lines: string[] = [];
  return { lines, stream: { isTTY, write: (line: string) => lines.push(line) } };
}

describe('createBrokerLogger', () => {
  it('writes JSON lines when the stream is not a terminal, one pid key (the broker’s)', () => {
    const out = sink(false);
    createBrokerLogger({ stream: out.stream, env: {} }).info(
      { service: 'echo', daemon_pid: 4242 },
      'backend ready',
    );
    expect(out.lines).toHaveLength(1);
    const line = out.lines[0]!;
    expect(line.match(/"pid":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({
      level: 30,
      pid: process.pid,
      name: 'handoff-broker',
      service: 'echo',
      daemon_pid: 4242,
      msg: 'backend ready',
    });
  });

  it('writes pretty lines on a terminal (auto), or when asked by option or environment', () => {
    const pretty = /^\d\d:\d\d:\d\d\.\d{3} INFO {2}backend ready service=echo daemon_pid=4242\n$/;
    for (const [isTTY, options] of [
      [true, {}],
      [false, { format: 'pretty' as const }],
      [false, { env: { HANDOFF_LOG_FORMAT: 'pretty' } }],
    ] as const) {
      const out = sink(isTTY);
      createBrokerLogger({ env: {}, ...options, stream: out.stream }).info(
        { service: 'echo', daemon_pid: 4242 },
        'backend ready',
      );
      expect(out.lines).toHaveLength(1);
      expect(out.lines[0]).toMatch(pretty);
    }
    const forcedJson = sink(true);
    createBrokerLogger({ format: 'json', stream: forcedJson.stream, env: {} }).warn('x');
    expect(JSON.parse(forcedJson.lines[0]!)).toMatchObject({ level: 40, msg: 'x' });
  });

  it('honours the level, from the option or $HANDOFF_LOG_LEVEL', () => {
    const out = sink(false);
    const log = createBrokerLogger({ stream: out.stream, env: { HANDOFF_LOG_LEVEL: 'warn' } });
    log.info('hidden');
    log.warn('shown');
    expect(out.lines.map((l) => JSON.parse(l).msg)).toEqual(['shown']);
  });
});

describe('prettyLine', () => {
  it('quotes values with spaces, shows errors by type and message, passes non-JSON through', () => {
    const line = prettyLine(
      JSON.stringify({
        level: 50,
        time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
        pid: 1,
        hostname: 'h',
        msg: 'failed',
        reason: 'two words',
        err: { type: 'Error', message: 'boom', stack: 'Error: boom\n at x' },
        n: 3,
      }),
    );
    expect(line).toBe('03:04:05.678 ERROR failed reason="two words" err="Error: boom" n=3\n');
    expect(prettyLine('not json')).toBe('not json\n');
  });

  it('parseLogFormat and resolveLogFormat', () => {
    expect(parseLogFormat('pretty')).toBe('pretty');
    expect(parseLogFormat('loud')).toBeUndefined();
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
  });
});
