// Crash reports: on an uncaught exception (or an unhandled rejection) that
// is about to end the process, one JSON file `<stateDir>/crash/<program>-
// <pid>-<time>.json` (stack, versions, argv, what the program adds),
// written synchronously; the process then dies exactly as it would have.
// Reading them back (`handoff-broker doctor`) is here too, so both agree.
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { arch, homedir, platform, release } from 'node:os';
import { isAbsolute, join } from 'node:path';

export interface CrashReportOptions {
  /** The program's name, first in the file name (`demo-kv`, `handoff-broker`). */
  program: string;
  /**
   * The state directory (reports go under `<stateDir>/crash`); default
   * $HANDOFF_STATE_DIR (a broker sets it for its daemons), else
   * $XDG_STATE_HOME/handoff, else ~/.local/state/handoff.
   */
  stateDir?: string;
  /** The package named in the report's versions (default: this SDK's own). */
  packageName?: string;
  packageVersion?: string;
  /** More to put in the report (the broker: its last journal events); a throw here is ignored. */
  extra?: () => Record<string, unknown>;
  /** Reports kept in the directory; older ones are removed (default 50). */
  keep?: number;
}

/** What one report holds (schema_version 1). */
export interface CrashReport {
  schema_version: 1;
  program: string;
  pid: number;
  /** ISO 8601, and Unix ms. */
  time: string;
  t: number;
  /** 'uncaughtException' or 'unhandledRejection'. */
  origin: string;
  error: { name: string; message: string; stack: string | null; code: string | null };
  versions: {
    node: string;
    package: { name: string; version: string };
    os: { platform: string; release: string; arch: string };
  };
  argv: string[];
  cwd: string;
  uptime_seconds: number;
  [extra: string]: unknown;
}

/** Where a broker tells its daemons its state directory is (BROKER_ENV.stateDir). */
export const STATE_DIR_ENV = 'HANDOFF_STATE_DIR';

/** `<stateDir>/crash`. */
export function crashReportsDir(stateDir: string): string {
  return join(stateDir, 'crash');
}

/** The state directory a daemon's reports go to, from its environment (see CrashReportOptions.stateDir). */
export function crashStateDir(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const fromBroker = env[STATE_DIR_ENV];
  if (fromBroker && isAbsolute(fromBroker)) return fromBroker;
  const state = env.XDG_STATE_HOME;
  if (state && isAbsolute(state)) return join(state, 'handoff');
  return join(home, '.local', 'state', 'handoff');
}

const DEFAULT_KEEP = 50;
let installed: { uninstall: () => void } | null = null;

/**
 * Writes a crash report when an uncaught exception is about to end this
 * process (an 'uncaughtExceptionMonitor': the exit code, the stack Node
 * prints and any handler the program has are unchanged; with an
 * 'uncaughtException' handler the process survives, so nothing is written).
 * Once per process: a second call returns the first one's uninstaller.
 */
export function installCrashReports(options: CrashReportOptions): () => void {
  if (installed) return installed.uninstall;
  const monitor = (error: unknown, origin: string) => {
    if (process.listenerCount('uncaughtException') > 0) return;
    writeCrashReport(error, origin, options);
  };
  process.on('uncaughtExceptionMonitor', monitor);
  const uninstall = () => {
    process.off('uncaughtExceptionMonitor', monitor);
    installed = null;
  };
  installed = { uninstall };
  return uninstall;
}

/** Writes one report now, synchronously; its path, or null when it could not be written. Never throws. */
export function writeCrashReport(
  error: unknown,
  origin: string,
  options: CrashReportOptions,
): string | null {
  try {
    const stateDir = options.stateDir ?? crashStateDir();
    const dir = crashReportsDir(stateDir);
    const now = new Date();
    let extra: Record<string, unknown> = {};
    try {
      extra = options.extra?.() ?? {};
    } catch {
      // What the program adds must not cost the report itself.
    }
    const report: CrashReport = {
      ...extra,
      schema_version: 1,
      program: options.program,
      pid: process.pid,
      time: now.toISOString(),
      t: now.getTime(),
      origin,
      error: describeError(error),
      versions: {
        node: process.versions.node,
        package: {
          name: options.packageName ?? SDK_PACKAGE,
          version: options.packageVersion ?? sdkVersion(),
        },
        os: { platform: platform(), release: release(), arch: arch() },
      },
      argv: process.argv,
      cwd: process.cwd(),
      uptime_seconds: process.uptime(),
    };
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stamp = now.toISOString().replace(/[-:.]/g, '');
    const name = `${safeName(options.program)}-${process.pid}-${stamp}.json`;
    const path = join(dir, name);
    // Whole or not at all: a reader never sees half a report.
    writeFileSync(`${path}.tmp`, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
    prune(dir, options.keep ?? DEFAULT_KEEP);
    return path;
  } catch {
    return null;
  }
}

/** One report found on disk: where, and what it says. */
export interface CrashReportEntry {
  path: string;
  report: CrashReport;
}

/**
 * The reports under `<stateDir>/crash`, newest first (at most `limit`).
 * Files that are not reports (garbled, foreign) are skipped.
 */
export function readCrashReports(
  stateDir: string,
  limit = Number.POSITIVE_INFINITY,
): CrashReportEntry[] {
  const dir = crashReportsDir(stateDir);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const entries: CrashReportEntry[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<CrashReport> | null;
      if (
        value === null ||
        typeof value !== 'object' ||
        value.schema_version !== 1 ||
        typeof value.t !== 'number' ||
        typeof value.program !== 'string' ||
        typeof value.error?.message !== 'string'
      )
        continue;
      entries.push({ path, report: value as CrashReport });
    } catch {
      // Unreadable or not JSON: not a report of ours.
    }
  }
  return entries.sort((a, b) => b.report.t - a.report.t).slice(0, limit);
}

function describeError(error: unknown): CrashReport['error'] {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      stack: error.stack ?? null,
      code: typeof code === 'string' ? code : null,
    };
  }
  let message: string;
  try {
    message = typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
  } catch {
    message = String(error);
  }
  return { name: typeof error, message, stack: null, code: null };
}

function safeName(program: string): string {
  return program.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'program';
}

/** Keeps the newest `keep` reports (by mtime). */
function prune(dir: string, keep: number): void {
  const files = readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => ({ path: join(dir, n), mtime: statSync(join(dir, n)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const f of files.slice(Math.max(1, keep))) unlinkSync(f.path);
}

const SDK_PACKAGE = '@handoff/backend-sdk';

function sdkVersion(): string {
  try {
    const manifest = createRequire(import.meta.url)('../package.json') as {
      name?: unknown;
      version?: unknown;
    };
    return manifest.name === SDK_PACKAGE && typeof manifest.version === 'string'
      ? manifest.version
      : 'unknown';
  } catch {
    return 'unknown';
  }
}
