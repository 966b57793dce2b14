// OpenMetrics rendering of the dispatcher's stats: every family declared
// before its samples, counters as *_total, one trailing "# EOF".
import { describe, expect, it } from 'vitest';
import { type DispatcherStats, renderDispatcherMetrics } from '../src/dispatch/metrics.js';

const stats: DispatcherStats = {
  workers: 2,
  alive: 2,
  accepting: false,
  activeConnections: 7,
  waitingConnections: 1,
  totalAccepted: 100,
  totalDispatched: 98,
  totalCompleted: 92,
  redispatched: 3,
  dispatchMessages: 40,
  errors: 4,
  errorsByKind: {
    send: 1,
    dropped: 2,
    adopt: 0,
    closed: 1,
    abandoned: 0,
    protocol: 0,
    accept: 0,
    spawn: 0,
    crash: 0,
  },
  avgAdoptMs: 0.5,
  adoptCount: 98,
  adoptSumMs: 49,
  respawns: 1,
  rotations: 2,
  queueDepth: [2, 0],
  perWorker: [
    {
      slot: 0,
      pid: 11,
      generation: 0,
      state: 'ready',
      queueDepth: 2,
      connections: 4,
      dispatched: 60,
    },
    {
      slot: 1,
      pid: 12,
      generation: 3,
      state: 'retiring',
      queueDepth: 0,
      connections: 2,
      dispatched: 38,
    },
  ],
};

describe('renderDispatcherMetrics', () => {
  const text = renderDispatcherMetrics(stats);
  const lines = text.trimEnd().split('\n');

  it('ends with exactly one # EOF and declares each family before its samples', () => {
    expect(text.endsWith('# EOF\n')).toBe(true);
    expect(lines.filter((l) => l === '# EOF')).toHaveLength(1);
    const declared = new Map<string, string>();
    for (const l of lines.slice(0, -1)) {
      const meta = /^# (TYPE|HELP|UNIT) (\S+) (.+)$/.exec(l);
      if (meta) {
        if (meta[1] === 'TYPE') {
          expect(declared.has(meta[2]!), `${meta[2]} declared twice`).toBe(false);
          declared.set(meta[2]!, meta[3]!);
        }
        continue;
      }
      const sample = /^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(l);
      expect(sample, l).not.toBeNull();
      const name = sample![1]!;
      const family = [...declared.keys()].find(
        (f) => name === f || ['_total', '_count', '_sum'].some((s) => name === f + s),
      );
      expect(family, `${name} has no family declared before it`).toBeDefined();
      if (declared.get(family!) === 'counter') expect(name.endsWith('_total')).toBe(true);
    }
  });

  it('has the numbers of the stats object', () => {
    expect(lines).toContain('handoff_dispatcher_workers 2');
    expect(lines).toContain('handoff_dispatcher_workers_alive 2');
    expect(lines).toContain('handoff_dispatcher_accepting 0');
    expect(lines).toContain('handoff_dispatcher_active_connections 7');
    expect(lines).toContain('handoff_dispatcher_dispatched_connections_total 98');
    expect(lines).toContain('handoff_dispatcher_errors_total{kind="dropped"} 2');
    expect(lines).toContain('handoff_dispatcher_adopt_seconds_count 98');
    expect(lines).toContain('handoff_dispatcher_adopt_seconds_sum 0.049');
    expect(lines).toContain('# UNIT handoff_dispatcher_adopt_seconds seconds');
    expect(lines).toContain('handoff_dispatcher_queue_depth{slot="0",pid="11",state="ready"} 2');
    expect(lines).toContain(
      'handoff_dispatcher_worker_connections{slot="1",pid="12",state="retiring"} 2',
    );
    expect(lines).toContain('handoff_dispatcher_worker_restarts_total{reason="rotation"} 2');
  });
});
