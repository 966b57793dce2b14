// What a running broker serves while its configuration changes under it: a
// reload that finds any problem keeps the last good definitions (all of
// them, not a mix of old and new), and the failure is remembered — file,
// line, error, when — until a clean reload clears it. `status` shows it
// (reloadStatusJson/Rows); the broker logs it at warn (keptMessage).
import { EMBEDDED_SOURCE, type ServiceConfigError, type ServiceDefinition } from './definition.js';
import { definitionsNamed } from './definition-index.js';
import type { ServiceConfigLoad } from './load.js';

export interface ConfigReloadFailure {
  atUnixMs: number;
  /** The first problem's ServiceConfigError code (INVALID_JSON, INVALID_DEFINITION, …). */
  code: string;
  file: string;
  line: number | null;
  column: number | null;
  message: string;
  /** How many problems the reload found. */
  problems: number;
  /** The definitions still served, and since when. */
  keptDefinitions: number;
  keptSinceUnixMs: number;
}

export interface ConfigReloadStatus {
  /** When the definitions served now were loaded. */
  loadedAtUnixMs: number;
  definitions: number;
  /** The last reload's failure, until a clean reload clears it. */
  failure: ConfigReloadFailure | null;
}

/** Problems in files: in-memory definitions cannot change, so they never fail a reload. */
function fileProblems(errors: readonly ServiceConfigError[]): ServiceConfigError[] {
  return errors.filter((e) => e.file !== EMBEDDED_SOURCE);
}

export class ConfigReloadKeeper {
  private good: { services: ServiceDefinition[]; atUnixMs: number } | null = null;
  private failure: ConfigReloadFailure | null = null;

  /**
   * Takes a load and says what to serve. The first load is taken as it is
   * (whether to start on it was decided before, e.g. by `serve`); after
   * that a load with problems in its files keeps the last good set and
   * returns the failure to report.
   */
  accept(
    result: ServiceConfigLoad,
    now = Date.now(),
  ): { services: ServiceDefinition[]; failure: ConfigReloadFailure | null } {
    const problems = fileProblems(result.errors);
    const first = problems[0];
    if (this.good === null || first === undefined) {
      // Index the names now rather than on the first Hello after the load.
      definitionsNamed(result.services, '');
      this.good = { services: result.services, atUnixMs: now };
      this.failure = null;
      return { services: result.services, failure: null };
    }
    this.failure = {
      atUnixMs: now,
      code: first.code,
      file: first.file,
      line: first.line ?? null,
      column: first.column ?? null,
      message: first.message,
      problems: problems.length,
      keptDefinitions: this.good.services.length,
      keptSinceUnixMs: this.good.atUnixMs,
    };
    return { services: this.good.services, failure: this.failure };
  }

  status(): ConfigReloadStatus {
    return {
      loadedAtUnixMs: this.good?.atUnixMs ?? 0,
      definitions: this.good?.services.length ?? 0,
      failure: this.failure,
    };
  }
}

/** The warn line a kept reload is logged with. */
export function keptMessage(failure: ConfigReloadFailure): string {
  const more = failure.problems > 1 ? ` (and ${failure.problems - 1} more)` : '';
  return (
    `config reload failed: ${failure.message}${more}; ` +
    `keeping ${failure.keptDefinitions} definitions from ${new Date(failure.keptSinceUnixMs).toISOString()}`
  );
}

/** STATUS --json: `config_reload`, always present (failure null when the last reload was clean). */
export function reloadStatusJson(s: ConfigReloadStatus | undefined): Record<string, unknown> {
  if (s === undefined) return {};
  const f = s.failure;
  return {
    config_reload: {
      ok: f === null,
      loaded_at_unix_ms: s.loadedAtUnixMs,
      definitions: s.definitions,
      failure:
        f === null
          ? null
          : {
              at_unix_ms: f.atUnixMs,
              code: f.code,
              file: f.file,
              line: f.line,
              column: f.column,
              message: f.message,
              problems: f.problems,
              kept_definitions: f.keptDefinitions,
              kept_since_unix_ms: f.keptSinceUnixMs,
            },
    },
  };
}

/** STATUS text: one `config` row. */
export function reloadStatusRows(s: ConfigReloadStatus | undefined): [string, string][] {
  if (s === undefined) return [];
  const f = s.failure;
  if (f === null)
    return [
      ['config', `${s.definitions} definitions loaded ${new Date(s.loadedAtUnixMs).toISOString()}`],
    ];
  return [
    [
      'config',
      `RELOAD FAILED ${new Date(f.atUnixMs).toISOString()}: ${f.message}; ` +
        `keeping ${f.keptDefinitions} definitions from ${new Date(f.keptSinceUnixMs).toISOString()}`,
    ],
  ];
}
