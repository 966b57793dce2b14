// The service definition schema: the ServiceDefinition type, its error, and
// reading one definition object into a frozen value with defaults resolved.
// Reading files and directories is load.ts; watching them is watch.ts;
// choosing among definitions is version-policy.ts.
import { isAbsolute } from 'node:path';
import { validateServiceName, validateVersion } from '@handoff/protocol';
import { BrokerError } from '../errors.js';

/** setTimeout turns longer delays into 1 ms, so ms settings stop here. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Likewise for idle timeouts, so the server can arm one timer for them. */
const MAX_IDLE_TIMEOUT_SECS = Math.floor(MAX_TIMER_MS / 1000);

/** How long a spawned daemon has to attach and pass its probe, unless its definition says. */
export const DEFAULT_READY_TIMEOUT_MS = 8_000;

/** Label used as `file` for definitions passed in memory. */
export const EMBEDDED_SOURCE = '<embedded>';

export interface ServiceDefinition {
  readonly name: string;
  readonly version: string;
  /** An absolute path, or a bare name looked up on PATH at spawn time. */
  readonly command: string;
  readonly args: readonly string[];
  /** Added to the broker's environment for the daemon. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Whether clients may be handed to the daemon (else they reconnect). */
  readonly handoff: boolean;
  /** Clients asking for a lower version are refused with VERSION_BLOCKED. */
  readonly minVersion?: string;
  /** When set, the only versions clients may ask for. */
  readonly allowVersions?: readonly string[];
  /** Seconds without clients before the daemon is stopped; 0 = never. */
  readonly idleTimeoutSecs?: number;
  readonly maxClients?: number;
  readonly readyTimeoutMs: number;
  readonly stopGraceMs: number;
  /**
   * Replace the daemon (a rolling restart) when the SHA-256 of its
   * executable or of `entryScript` changes on disk (default false).
   */
  readonly restartOnChange: boolean;
  /** An absolute path: the script whose contents tell one build of the daemon from another. */
  readonly entryScript?: string;
  /**
   * In a rolling restart, how long the replaced daemon may drain after its
   * SIGTERM before it is killed (default 30 000 ms).
   */
  readonly drainMs: number;
  /**
   * In a rolling restart, the nice value (0–19) of the replacement's
   * autogroup while it boots, so that its start-up takes less CPU from the
   * daemon, broker and clients that are live; its full weight is back once
   * it is ready, before it takes a client (lifecycle/boot-priority.ts).
   * 0 leaves it alone (default 10).
   */
  readonly replacementNice: number;
  /** How many fds the daemon may keep in the broker's fd store (default 16; 0 turns it off). */
  readonly fdStoreMax: number;
  /** Seconds a stored fd waits for a daemon to collect it before it is closed (default 60). */
  readonly fdStoreMaxAgeSecs: number;
  /**
   * The broker binds the daemon's endpoint and passes the listener in as fd
   * 3 with HANDOFF_LISTEN_FD=3 (default true). Turn it off for a daemon
   * that binds its socket itself and refuses a live one (not built on
   * `@handoff/backend-sdk`).
   */
  readonly ownSocket: boolean;
  /** Size at which the daemon's log file is rotated (default 10 MiB). */
  readonly logMaxBytes: number;
  /** Rotated log files kept besides the current one (default 3). */
  readonly logFiles: number;
  /** The file the definition came from (EMBEDDED_SOURCE for in-memory ones). */
  readonly source: string;
}

export type ServiceConfigErrorCode =
  | 'INVALID_DEFINITION'
  | 'DUPLICATE_SERVICE'
  | 'UNREADABLE'
  | 'INVALID_JSON';

export class ServiceConfigError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:ServiceConfigError';
  override readonly name = 'ServiceConfigError';
  declare readonly code: ServiceConfigErrorCode;
  /** The file at fault (a directory for UNREADABLE listings/watches). */
  readonly file: string;
  /** Path of the field at fault inside the file, e.g. `services[1].args[0]`. */
  readonly field?: string;
  /** For DUPLICATE_SERVICE: the file that defined the service first (and keeps it). */
  readonly firstFile?: string;
  /** For INVALID_JSON: where the syntax error is, 1-based (json-position.ts). */
  readonly line?: number;
  readonly column?: number;
  /** For UNREADABLE: the errno name when a syscall failed (ENOENT: the file does not exist). */
  readonly errno?: string;
  constructor(
    code: ServiceConfigErrorCode,
    file: string,
    message: string,
    details: {
      field?: string | undefined;
      firstFile?: string;
      cause?: unknown;
      line?: number;
      column?: number;
      errno?: string | undefined;
    } = {},
  ) {
    const at = details.line === undefined ? file : `${file}:${details.line}:${details.column ?? 1}`;
    const where = details.field === undefined ? at : `${at}: ${details.field}`;
    super(code, `${where}: ${message}`, { cause: details.cause });
    this.file = file;
    if (details.field !== undefined) this.field = details.field;
    if (details.firstFile !== undefined) this.firstFile = details.firstFile;
    if (details.line !== undefined) this.line = details.line;
    if (details.column !== undefined) this.column = details.column;
    if (details.errno !== undefined) this.errno = details.errno;
  }
}

const KNOWN_KEYS = new Set([
  'name',
  'version',
  'command',
  'args',
  'env',
  'cwd',
  'handoff',
  'minVersion',
  'allowVersions',
  'idleTimeoutSecs',
  'maxClients',
  'readyTimeoutMs',
  'stopGraceMs',
  'restartOnChange',
  'entryScript',
  'drainMs',
  'replacementNice',
  'fdStoreMax',
  'fdStoreMaxAgeSecs',
  'ownSocket',
  'logMaxBytes',
  'logFiles',
]);

/** SCM_MAX_FD: more could not travel back to a daemon in one message. */
export const MAX_FD_STORE_FDS = 253;

/**
 * Semver's own grammar, narrowed to @handoff/protocol's alphabet: no leading
 * zeros and no empty prerelease identifiers, which VERSION_PATTERN lets
 * through but which would make two spellings of one version.
 */
const NUMERIC_ID = '(?:0|[1-9]\\d*)';
const PRE_ID = `(?:${NUMERIC_ID}|\\d*[a-z][a-z0-9]*)`;
const CANONICAL_VERSION = new RegExp(
  `^${NUMERIC_ID}\\.${NUMERIC_ID}\\.${NUMERIC_ID}(?:-${PRE_ID}(?:\\.${PRE_ID})*)?$`,
);
const RELEASE_VERSION = new RegExp(`^${NUMERIC_ID}\\.${NUMERIC_ID}\\.${NUMERIC_ID}$`);
/** A key a field path can spell as `.key`; any other goes in `["…"]`. */
export const IDENTIFIER_KEY = /^[A-Za-z_$][\w$]*$/;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How an unexpected value is named in a message: `a number`, `an array`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Validates one definition object; `prefix` is its path inside the file. */
class DefinitionReader {
  constructor(
    private readonly value: Record<string, unknown>,
    private readonly source: string,
    private readonly prefix: string,
  ) {}

  path(key: string): string {
    if (!IDENTIFIER_KEY.test(key)) return `${this.prefix}[${JSON.stringify(key)}]`;
    return this.prefix === '' ? key : `${this.prefix}.${key}`;
  }

  fail(field: string, message: string): never {
    throw new ServiceConfigError('INVALID_DEFINITION', this.source, message, { field });
  }

  /** Own properties only: a JSON key named `toString` is data, not a method. */
  get(key: string): unknown {
    return Object.hasOwn(this.value, key) ? this.value[key] : undefined;
  }

  string(key: string, required: true): string;
  string(key: string, required: false): string | undefined;
  string(key: string, required: boolean): string | undefined {
    const v = this.get(key);
    if (v === undefined) {
      if (required) this.fail(this.path(key), 'is required');
      return undefined;
    }
    return this.text(this.path(key), v);
  }

  /** A string spawn() can carry: it rejects NUL bytes, so the config does too. */
  text(field: string, v: unknown): string {
    if (typeof v !== 'string') this.fail(field, `must be a string, not ${describe(v)}`);
    if (v.includes('\0')) this.fail(field, 'must not contain a NUL character');
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.get(key);
    if (v !== undefined && typeof v !== 'boolean')
      this.fail(this.path(key), `must be true or false, not ${describe(v)}`);
    return v;
  }

  integer(key: string, min: number, max: number): number | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(
        this.path(key),
        `must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`,
      );
    }
    return v;
  }

  version(field: string, v: unknown, releaseOnly: boolean): string {
    const text = this.text(field, v);
    const verdict = validateVersion(text, field);
    if (!verdict.ok) this.fail(field, verdict.reason);
    if (releaseOnly && !RELEASE_VERSION.test(text)) {
      this.fail(field, `${JSON.stringify(text)} must be a release version like 1.2.3`);
    }
    if (!CANONICAL_VERSION.test(text)) {
      this.fail(
        field,
        `${JSON.stringify(text)} has a leading zero or an empty prerelease part (semver forbids both)`,
      );
    }
    return text;
  }
}

/**
 * Validates one definition object and resolves its defaults. `source` names
 * the file; `pathPrefix` is where the object sits in it (`services[2]`).
 * Throws only ServiceConfigError (code INVALID_DEFINITION).
 */
export function parseServiceDefinition(
  value: unknown,
  source: string,
  pathPrefix = '',
): ServiceDefinition {
  try {
    return readDefinition(value, source, pathPrefix);
  } catch (error) {
    if (error instanceof ServiceConfigError) throw error;
    // Only in-memory values can get here (a throwing getter or a Proxy);
    // JSON never does. Keep the promise of typed errors anyway.
    throw new ServiceConfigError(
      'INVALID_DEFINITION',
      source,
      `could not be read: ${(error as Error)?.message ?? String(error)}`,
      { field: pathPrefix === '' ? undefined : pathPrefix, cause: error },
    );
  }
}

function readDefinition(value: unknown, source: string, prefix: string): ServiceDefinition {
  if (!isRecord(value)) {
    throw new ServiceConfigError(
      'INVALID_DEFINITION',
      source,
      `a service definition must be a JSON object, not ${describe(value)}`,
      { field: prefix === '' ? undefined : prefix },
    );
  }
  // Annotated so that `r.fail(...)` (returns never) narrows types after it.
  const r: DefinitionReader = new DefinitionReader(value, source, prefix);
  const unknown = Object.keys(value).filter((k) => !KNOWN_KEYS.has(k));
  if (unknown.length > 0) {
    r.fail(
      r.path(unknown[0]!),
      `unknown key ${JSON.stringify(unknown[0]!.slice(0, 80))}${unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : ''}; known keys: ${[...KNOWN_KEYS].join(', ')}`,
    );
  }

  const name = r.string('name', true);
  const nameVerdict = validateServiceName(name);
  if (!nameVerdict.ok) r.fail(r.path('name'), nameVerdict.reason);

  const version = r.version(r.path('version'), r.string('version', true), false);

  const command = r.string('command', true);
  if (command === '') r.fail(r.path('command'), 'must not be empty');
  if (!isAbsolute(command) && command.includes('/')) {
    // A relative path would depend on the broker's working directory.
    r.fail(r.path('command'), `${JSON.stringify(command)} must be an absolute path or a bare name`);
  }

  let args: readonly string[] = Object.freeze([]);
  const rawArgs = r.get('args');
  if (rawArgs !== undefined) {
    if (!Array.isArray(rawArgs))
      r.fail(r.path('args'), `must be an array, not ${describe(rawArgs)}`);
    args = Object.freeze(rawArgs.map((a, i) => r.text(`${r.path('args')}[${i}]`, a)));
  }

  let env: Readonly<Record<string, string>> = Object.freeze({});
  const rawEnv = r.get('env');
  if (rawEnv !== undefined) {
    if (!isRecord(rawEnv)) r.fail(r.path('env'), `must be an object, not ${describe(rawEnv)}`);
    const envReader = new DefinitionReader(rawEnv, source, r.path('env'));
    const entries = Object.keys(rawEnv).map((key): [string, string] => {
      const field = envReader.path(key);
      if (key === '' || key.includes('=') || key.includes('\0')) {
        r.fail(field, 'an environment variable name must be non-empty without "=" or NUL');
      }
      return [key, r.text(field, rawEnv[key])];
    });
    // fromEntries defines own properties, so a key "__proto__" stays data.
    env = Object.freeze(Object.fromEntries(entries));
  }

  const cwd = r.string('cwd', false);
  if (cwd !== undefined && !isAbsolute(cwd)) {
    r.fail(r.path('cwd'), `${JSON.stringify(cwd.slice(0, 200))} must be an absolute path`);
  }

  const rawHandoff = r.boolean('handoff');
  const restartOnChange = r.boolean('restartOnChange') ?? false;
  const ownSocket = r.boolean('ownSocket') ?? true;
  const entryScript = r.string('entryScript', false);
  if (entryScript !== undefined && !isAbsolute(entryScript)) {
    r.fail(
      r.path('entryScript'),
      `${JSON.stringify(entryScript.slice(0, 200))} must be an absolute path`,
    );
  }

  const rawMin = r.get('minVersion');
  const minVersion =
    rawMin === undefined ? undefined : r.version(r.path('minVersion'), rawMin, true);

  let allowVersions: readonly string[] | undefined;
  const rawAllow = r.get('allowVersions');
  if (rawAllow !== undefined) {
    if (!Array.isArray(rawAllow)) {
      r.fail(r.path('allowVersions'), `must be an array, not ${describe(rawAllow)}`);
    }
    if (rawAllow.length === 0) {
      // An empty list would refuse every client; leaving the key out allows all.
      r.fail(r.path('allowVersions'), 'must list at least one version (omit it to allow all)');
    }
    allowVersions = Object.freeze(
      rawAllow.map((v, i) => r.version(`${r.path('allowVersions')}[${i}]`, v, false)),
    );
  }

  const idleTimeoutSecs = r.integer('idleTimeoutSecs', 0, MAX_IDLE_TIMEOUT_SECS);
  const maxClients = r.integer('maxClients', 1, Number.MAX_SAFE_INTEGER);
  // Under connectService's 10 s default, so that a client waiting on a spawn
  // that fails hears why (Refused{BACKEND_SPAWN_FAILED}), not its own timeout.
  const readyTimeoutMs = r.integer('readyTimeoutMs', 1, MAX_TIMER_MS) ?? DEFAULT_READY_TIMEOUT_MS;
  const stopGraceMs = r.integer('stopGraceMs', 0, MAX_TIMER_MS) ?? 5_000;
  const drainMs = r.integer('drainMs', 0, MAX_TIMER_MS) ?? 30_000;
  const replacementNice = r.integer('replacementNice', 0, 19) ?? 10;
  const fdStoreMax = r.integer('fdStoreMax', 0, MAX_FD_STORE_FDS) ?? 16;
  const fdStoreMaxAgeSecs = r.integer('fdStoreMaxAgeSecs', 1, MAX_IDLE_TIMEOUT_SECS) ?? 60;
  const logMaxBytes = r.integer('logMaxBytes', 4096, Number.MAX_SAFE_INTEGER) ?? 10 * 1024 * 1024;
  const logFiles = r.integer('logFiles', 0, 100) ?? 3;

  const definition: ServiceDefinition = {
    name,
    version,
    command,
    args,
    env,
    ...(cwd === undefined ? {} : { cwd }),
    handoff: rawHandoff ?? true,
    ...(minVersion === undefined ? {} : { minVersion }),
    ...(allowVersions === undefined ? {} : { allowVersions }),
    ...(idleTimeoutSecs === undefined ? {} : { idleTimeoutSecs }),
    ...(maxClients === undefined ? {} : { maxClients }),
    readyTimeoutMs,
    stopGraceMs,
    restartOnChange,
    ...(entryScript === undefined ? {} : { entryScript }),
    drainMs,
    replacementNice,
    fdStoreMax,
    fdStoreMaxAgeSecs,
    ownSocket,
    logMaxBytes,
    logFiles,
    source,
  };
  return Object.freeze(definition);
}
