// How a top view looks: the text table (one line per service, one more per
// extra daemon; fitted to the terminal's width) and the JSON document of
// `top --once --json`. Pure: the view in, a string out.
import { columns } from '@handoff/backend-sdk/cli';
import type { ServiceRow, TopView } from './model.js';

export interface RenderOptions {
  /** Cut every line to this many columns (the terminal's width). */
  width?: number;
  /** The key help line of the live view. */
  keysHint?: boolean;
  /** A problem to show under the header (the broker stopped answering…). */
  problem?: string;
}

const HEADER = [
  'SERVICE',
  'DAEMONS',
  'PID',
  'UPTIME',
  'RSS',
  'SESS/S',
  'P50',
  'P99',
  'REFUSED',
  'SPAWN_FAIL',
  'REFUSALS BY CODE',
];

export function renderText(view: TopView, options: RenderOptions = {}): string {
  const daemons = view.rows.reduce((n, r) => n + r.daemons.length, 0);
  const every =
    view.intervalSeconds === null ? 'first sample' : `last ${view.intervalSeconds.toFixed(1)} s`;
  const lines = [
    `handoff-broker top  ${new Date(view.atUnixMs).toISOString().slice(0, 19)}Z  ` +
      `${plural(view.rows.length, 'service')}, ${plural(daemons, 'daemon')}  (${every}, sort: ${view.sort})`,
  ];
  if (options.keysHint) lines.push('keys: s/S next/previous sort, 1-8 sort column, q quit');
  if (options.problem) lines.push(`! ${options.problem}`);
  lines.push('');
  const table: string[][] = [HEADER];
  let anyTotal = false;
  for (const row of view.rows) {
    anyTotal ||= row.latencyWindow === 'total' && row.helloP50 !== null;
    table.push(...rowCells(row));
  }
  lines.push(...columns(table).split('\n').slice(0, -1));
  if (view.rows.length === 0) lines.push('(no services defined and no Hellos seen)');
  const notes: string[] = [];
  if (anyTotal) notes.push('* since the broker started: no Hellos in the last interval');
  if (view.rows.some((r) => !r.defined)) notes.push('? not a defined service: only asked for');
  if (notes.length > 0) lines.push('', ...notes);
  const width = options.width;
  return `${lines.map((l) => (width !== undefined && l.length > width ? l.slice(0, width) : l)).join('\n')}\n`;
}

function rowCells(row: ServiceRow): string[][] {
  const mark = row.latencyWindow === 'total' && row.helloP50 !== null ? '*' : '';
  const first = row.daemons[0];
  const refusals = row.refusals.map((r) => `${r.code}:${r.count}`).join(' ');
  const cells = [
    [
      row.defined ? row.service : `${row.service}?`,
      String(row.daemons.length),
      first ? pidText(first.pid) : '-',
      first ? formatUptime(first.uptimeSeconds) : '-',
      first ? formatBytes(first.rssBytes) : '-',
      row.sessionsPerSecond === null ? '-' : row.sessionsPerSecond.toFixed(1),
      row.helloP50 === null ? '-' : `${formatSeconds(row.helloP50)}${mark}`,
      row.helloP99 === null ? '-' : `${formatSeconds(row.helloP99)}${mark}`,
      String(row.refusedTotal),
      String(row.spawnFailures),
      refusals,
    ],
  ];
  for (const d of row.daemons.slice(1))
    cells.push(['', '', pidText(d.pid), formatUptime(d.uptimeSeconds), formatBytes(d.rssBytes)]);
  return cells;
}

function pidText(pid: number | null): string {
  return pid === null ? '?' : String(pid);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** 120us, 2.50ms, 1.20s (ASCII "us": terminals without UTF-8 show it too). */
export function formatSeconds(seconds: number): string {
  if (seconds < 0.001) return `${Math.round(seconds * 1e6)}us`;
  if (seconds < 1) return `${(seconds * 1000).toFixed(2)}ms`;
  return `${seconds.toFixed(2)}s`;
}

/** 45s, 3m05s, 2h03m, 3d04h. */
export function formatUptime(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad2(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad2(Math.floor(s / 3600) % 24)}h`;
}

/** 980K, 45.2M, 1.50G (binary units); `-` when unknown. */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)}K`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)}M`;
  return `${(bytes / 1024 ** 3).toFixed(2)}G`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** `top --once --json`: one document, schema_version 1, `ok`/`code`/`message` like every command. */
export function renderJson(view: TopView): string {
  return `${JSON.stringify({
    schema_version: 1,
    ok: true,
    code: 'OK',
    message: `${plural(view.rows.length, 'service')}`,
    at_unix_ms: view.atUnixMs,
    interval_seconds: view.intervalSeconds,
    sort: view.sort,
    services: view.rows.map((r) => ({
      service: r.service,
      defined: r.defined,
      daemons: r.daemons.map((d) => ({
        pid: d.pid,
        version: d.version,
        state: d.state,
        uptime_seconds: d.uptimeSeconds,
        rss_bytes: d.rssBytes,
      })),
      rss_bytes: r.rssBytes,
      sessions_per_second: r.sessionsPerSecond,
      hello_p50_seconds: r.helloP50,
      hello_p99_seconds: r.helloP99,
      latency_window: r.latencyWindow,
      refusals: Object.fromEntries(r.refusals.map((x) => [x.code, x.count])),
      refused_total: r.refusedTotal,
      spawn_failures: r.spawnFailures,
    })),
  })}\n`;
}
