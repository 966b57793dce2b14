// What `status` says about daemon output: the state directory, each log
// file's dropped lines (a full disk), and the last spawn failure per
// service with its output tail — as the STATUS JSON keys and text rows.
import type { SpawnFailure } from './failure-tail.js';
import type { LogFileStats } from './log-file.js';

export interface LogsStatus {
  /** Where daemon logs go (`<stateDir>/logs`), or null when output is kept in memory only. */
  stateDir: string | null;
  files: LogFileStats[];
  /** The last spawn failure per `service@version`, oldest first. */
  spawnFailures: SpawnFailure[];
}

/** The STATUS JSON keys: `state_dir`, `logs`, `spawn_failures`. */
export function logsStatusJson(status: LogsStatus | undefined): Record<string, unknown> {
  if (!status) return {};
  return {
    state_dir: status.stateDir,
    logs: status.files.map((f) => ({
      path: f.path,
      dropped_lines: f.dropped,
      failing: f.failing,
    })),
    spawn_failures: status.spawnFailures.map((f) => ({
      service: f.service,
      version: f.version,
      at_unix_ms: f.atUnixMs,
      message: f.message,
      tail: f.tail,
    })),
  };
}

/** The STATUS text rows (key, value). */
export function logsStatusRows(status: LogsStatus | undefined): [string, string][] {
  if (!status) return [];
  const dropped = status.files.reduce((sum, f) => sum + f.dropped, 0);
  const failing = status.files.filter((f) => f.failing !== null);
  const rows: [string, string][] = [
    ['state dir', status.stateDir ?? 'none (daemon output is not written to files)'],
    [
      'logs',
      `${status.files.length} file(s), ${dropped} line(s) dropped` +
        (failing.length > 0
          ? `; failing: ${failing.map((f) => `${f.path} (${f.failing})`).join(', ')}`
          : ''),
    ],
  ];
  for (const f of status.spawnFailures) {
    rows.push([
      'spawn failure',
      `${f.service}@${f.version} at ${new Date(f.atUnixMs).toISOString()}: ${f.message.split('\n')[0]}`,
    ]);
    for (const line of f.tail) rows.push(['  output', line]);
  }
  return rows;
}
