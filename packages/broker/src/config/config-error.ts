// ConfigError: why `serve` refuses to start on its configuration — one
// error a user can act on, naming the file (and for broken JSON the line and
// column). The per-file problems it summarises are ServiceConfigErrors
// (definition.ts); deciding when to refuse is startup-check.ts.
import { BrokerError } from '../errors.js';
import type { ServiceConfigError } from './definition.js';

export type ConfigErrorCode =
  /** The --config-file does not exist. */
  | 'CONFIG_MISSING'
  /** A config file is not JSON (or not UTF-8); `line` and `column` say where. */
  | 'CONFIG_SYNTAX'
  /** A config file is JSON but a definition in it is not valid, or defines a service twice. */
  | 'CONFIG_INVALID'
  /** The --config-dir (or the default directory) does not exist, or is not a directory. */
  | 'CONFIG_DIR_MISSING'
  /** A config file or the directory cannot be read (permissions, not a regular file, too big). */
  | 'CONFIG_UNREADABLE';

export class ConfigError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:ConfigError';
  override readonly name = 'ConfigError';
  declare readonly code: ConfigErrorCode;
  /** The file or directory at fault. */
  readonly file: string;
  /** For CONFIG_SYNTAX: 1-based line and column of the error. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** Every problem the load found (the first is the one this error names). */
  readonly problems: readonly ServiceConfigError[];
  constructor(
    code: ConfigErrorCode,
    message: string,
    details: {
      file: string;
      line?: number | undefined;
      column?: number | undefined;
      problems?: readonly ServiceConfigError[];
      cause?: unknown;
    },
  ) {
    super(code, message, { cause: details.cause });
    this.file = details.file;
    this.line = details.line;
    this.column = details.column;
    this.problems = details.problems ?? [];
  }

  /** The error's fields as one JSON-ready record (`ok: false`, `code`, `message`, `file`, …). */
  toJSON(): Record<string, unknown> {
    return {
      ok: false,
      code: this.code,
      message: this.message,
      file: this.file,
      line: this.line ?? null,
      column: this.column ?? null,
      problems: this.problems.map((p) => ({
        code: p.code,
        file: p.file,
        field: p.field ?? null,
        line: p.line ?? null,
        column: p.column ?? null,
        message: p.message,
      })),
    };
  }
}

function codeFor(problem: ServiceConfigError): ConfigErrorCode {
  switch (problem.code) {
    case 'INVALID_JSON':
      return 'CONFIG_SYNTAX';
    case 'INVALID_DEFINITION':
    case 'DUPLICATE_SERVICE':
      return 'CONFIG_INVALID';
    case 'UNREADABLE':
      return problem.errno === 'ENOENT' ? 'CONFIG_MISSING' : 'CONFIG_UNREADABLE';
  }
}

/** One ConfigError for a load's problems: the first names the code, file and position. */
export function configErrorFrom(problems: readonly ServiceConfigError[]): ConfigError {
  const first = problems[0];
  if (first === undefined) throw new RangeError('configErrorFrom needs at least one problem');
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : '';
  return new ConfigError(codeFor(first), `${first.message}${more}`, {
    file: first.file,
    line: first.line,
    column: first.column,
    problems,
    cause: first,
  });
}
