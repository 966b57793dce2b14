// Service definitions: the JSON that tells the broker which daemons it may
// spawn, read from a directory of `*.json` files and/or one explicit file,
// validated into frozen values with defaults resolved, plus a watcher that
// reloads them. Choosing among definitions is version-policy.ts; spawning
// them is the server's.
//
// Loading never throws for bad content: each unreadable file or invalid
// definition becomes a ServiceConfigError naming the file and the field path,
// and every valid definition elsewhere still loads, so one typo cannot take
// down the services that were fine.
import { type FSWatcher, constants as fsConstants, type Stats, statSync, watch } from 'node:fs';
import { type FileHandle, open, readdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { validateServiceName, validateVersion } from '@handoff/protocol';

/** Config files are small; anything bigger is refused before it is read. */
export const MAX_SERVICE_CONFIG_BYTES = 1024 * 1024;

/** setTimeout turns longer delays into 1 ms, so ms settings stop here. */
const MAX_TIMER_MS = 2_147_483_647;
/** Likewise for idle timeouts, so the server can arm one timer for them. */
const MAX_IDLE_TIMEOUT_SECS = Math.floor(MAX_TIMER_MS / 1000);

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
  /** The file the definition came from (EMBEDDED_SOURCE for in-memory ones). */
  readonly source: string;
}

export type ServiceConfigErrorCode =
  | 'INVALID_DEFINITION'
  | 'DUPLICATE_SERVICE'
  | 'UNREADABLE'
  | 'INVALID_JSON';

export class ServiceConfigError extends Error {
  override readonly name = 'ServiceConfigError';
  readonly code: ServiceConfigErrorCode;
  /** The file at fault (a directory for UNREADABLE listings/watches). */
  readonly file: string;
  /** Path of the field at fault inside the file, e.g. `services[1].args[0]`. */
  readonly field?: string;
  /** For DUPLICATE_SERVICE: the file that defined the service first (and keeps it). */
  readonly firstFile?: string;
  constructor(
    code: ServiceConfigErrorCode,
    file: string,
    message: string,
    details: { field?: string | undefined; firstFile?: string; cause?: unknown } = {},
  ) {
    const where = details.field === undefined ? file : `${file}: ${details.field}`;
    super(
      `${where}: ${message}`,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.code = code;
    this.file = file;
    if (details.field !== undefined) this.field = details.field;
    if (details.firstFile !== undefined) this.firstFile = details.firstFile;
  }
}

export interface ServiceConfigSources {
  /** A directory of `*.json` files; a missing directory holds no services. */
  dir?: string;
  /** One config file named explicitly; missing is an error. */
  file?: string;
  /** Definitions supplied in memory (e.g. by an embedding program). */
  embedded?: readonly unknown[];
}

export interface ServiceConfigLoad {
  services: ServiceDefinition[];
  errors: ServiceConfigError[];
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
]);

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
const IDENTIFIER_KEY = /^[A-Za-z_$][\w$]*$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
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

  const rawHandoff = r.get('handoff');
  if (rawHandoff !== undefined && typeof rawHandoff !== 'boolean') {
    r.fail(r.path('handoff'), `must be true or false, not ${describe(rawHandoff)}`);
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
  const readyTimeoutMs = r.integer('readyTimeoutMs', 1, MAX_TIMER_MS) ?? 10_000;
  const stopGraceMs = r.integer('stopGraceMs', 0, MAX_TIMER_MS) ?? 5_000;

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
    source,
  };
  return Object.freeze(definition);
}

/** One parsed file: `{ services: [...] }` or a single definition object. */
function parseDocument(doc: unknown, source: string, out: ServiceConfigLoad): void {
  if (!isRecord(doc) || !Object.hasOwn(doc, 'services')) {
    collect(doc, source, '', out);
    return;
  }
  for (const key of Object.keys(doc)) {
    if (key === 'services') continue;
    out.errors.push(
      new ServiceConfigError(
        'INVALID_DEFINITION',
        source,
        `unknown key ${JSON.stringify(key.slice(0, 80))} beside "services"`,
        { field: IDENTIFIER_KEY.test(key) ? key : `[${JSON.stringify(key)}]` },
      ),
    );
  }
  const list = doc.services;
  if (!Array.isArray(list)) {
    out.errors.push(
      new ServiceConfigError(
        'INVALID_DEFINITION',
        source,
        `must be an array of definitions, not ${describe(list)}`,
        { field: 'services' },
      ),
    );
    return;
  }
  list.forEach((item, i) => {
    collect(item, source, `services[${i}]`, out);
  });
}

function collect(value: unknown, source: string, prefix: string, out: ServiceConfigLoad): void {
  try {
    out.services.push(parseServiceDefinition(value, source, prefix));
  } catch (error) {
    out.errors.push(error as ServiceConfigError);
  }
}

type ReadResult = { text: string } | { error: ServiceConfigError } | { missing: true };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function unreadable(file: string, error: unknown, what = 'cannot be read'): ServiceConfigError {
  const e = error as NodeJS.ErrnoException;
  return new ServiceConfigError('UNREADABLE', file, `${what}: ${e?.code ?? e?.message ?? e}`, {
    cause: error,
  });
}

/** Reads a config file with the size cap checked before any buffer exists. */
async function readConfigFile(file: string): Promise<ReadResult> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO named `x.json` must not hang the load in open().
    handle = await open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
    return { error: unreadable(file, error) };
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      return { error: new ServiceConfigError('UNREADABLE', file, 'is not a regular file') };
    }
    if (info.size > MAX_SERVICE_CONFIG_BYTES) {
      return {
        error: new ServiceConfigError(
          'UNREADABLE',
          file,
          `is ${info.size} bytes, over the ${MAX_SERVICE_CONFIG_BYTES}-byte cap; not read`,
        ),
      };
    }
    // One spare byte tells "exactly as big as stat said" from "still growing".
    const buffer = Buffer.alloc(info.size + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > info.size) {
      // The watcher will see the writer finish and load again.
      return {
        error: new ServiceConfigError('UNREADABLE', file, 'changed size while being read'),
      };
    }
    try {
      return { text: utf8.decode(buffer.subarray(0, filled)) };
    } catch (error) {
      return {
        error: new ServiceConfigError('INVALID_JSON', file, 'is not valid UTF-8', {
          cause: error,
        }),
      };
    }
  } catch (error) {
    return { error: unreadable(file, error) };
  } finally {
    await handle.close().catch(() => {});
  }
}

async function loadFile(
  file: string,
  missingIsError: boolean,
  out: ServiceConfigLoad,
): Promise<void> {
  const read = await readConfigFile(file);
  if ('missing' in read) {
    if (missingIsError) {
      out.errors.push(new ServiceConfigError('UNREADABLE', file, 'does not exist'));
    }
    return;
  }
  if ('error' in read) {
    out.errors.push(read.error);
    return;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(read.text);
  } catch (error) {
    out.errors.push(
      new ServiceConfigError('INVALID_JSON', file, `is not JSON: ${(error as Error).message}`, {
        cause: error,
      }),
    );
    return;
  }
  parseDocument(doc, file, out);
}

/** `*.json`, skipping dotfiles: editors' temp and lock files (`.#a.json`). */
function isConfigFileName(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith('.');
}

async function listConfigDir(dir: string, out: ServiceConfigLoad): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    out.errors.push(unreadable(dir, error, 'cannot list the directory'));
    return [];
  }
  // Sorted so that which of two duplicates wins does not depend on readdir.
  return names
    .filter(isConfigFileName)
    .sort()
    .map((name) => join(dir, name));
}

/** Keeps the first definition of each name@version; later ones become errors. */
function dropDuplicates(out: ServiceConfigLoad): void {
  const first = new Map<string, ServiceDefinition>();
  const kept: ServiceDefinition[] = [];
  for (const definition of out.services) {
    const key = `${definition.name}@${definition.version}`;
    const earlier = first.get(key);
    if (earlier === undefined) {
      first.set(key, definition);
      kept.push(definition);
      continue;
    }
    out.errors.push(
      new ServiceConfigError(
        'DUPLICATE_SERVICE',
        definition.source,
        `${key} is already defined in ${earlier.source}; this definition is ignored`,
        { firstFile: earlier.source },
      ),
    );
  }
  out.services = kept;
}

/**
 * Loads every definition from `embedded`, then `dir` (files in name order),
 * then `file`. Never rejects: problems are returned in `errors`.
 */
export async function loadServiceDefinitions(
  sources: ServiceConfigSources,
): Promise<ServiceConfigLoad> {
  const out: ServiceConfigLoad = { services: [], errors: [] };
  try {
    sources.embedded?.forEach((value, i) => {
      collect(value, EMBEDDED_SOURCE, `embedded[${i}]`, out);
    });
    const files = sources.dir === undefined ? [] : await listConfigDir(sources.dir, out);
    for (const file of files) await loadFile(file, false, out);
    if (sources.file !== undefined) {
      const explicit = resolve(sources.file);
      // The same file listed twice would only duplicate every service in it.
      if (!files.some((f) => resolve(f) === explicit)) await loadFile(sources.file, true, out);
    }
    dropDuplicates(out);
  } catch (error) {
    // Nothing above should throw; if something does, report it, not reject.
    out.errors.push(
      unreadable(sources.file ?? sources.dir ?? EMBEDDED_SOURCE, error, 'load failed'),
    );
  }
  return out;
}

export interface WatchServiceOptions {
  /** Quiet time after the last change before reloading; default 100 ms. */
  debounceMs?: number;
}

export interface ServiceConfigWatcher {
  /** Stops watching: releases every fs watcher and timer; no reload follows. */
  close(): void;
}

function sameDirectory(a: Stats | undefined, b: Stats): boolean {
  return a?.isDirectory() === true && a.dev === b.dev && a.ino === b.ino;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Watches one directory for entries `accept` cares about. Files are watched
 * through their directory, not directly, because an inotify watch follows an
 * inode: an editor that saves by rename would leave a direct watch on the
 * old, deleted file. When the directory does not exist (yet), the nearest
 * existing ancestor is watched for the next path component to appear.
 */
class DirectoryWatch {
  readonly #dir: string;
  readonly #accept: (name: string) => boolean;
  readonly #onChange: () => void;
  #watcher: FSWatcher | undefined;
  /** What is watched: the directory itself, or an ancestor waiting for it. */
  #watched: { path: string; stats: Stats; isTarget: boolean; nextName: string } | undefined;
  #broken = false;

  constructor(dir: string, accept: (name: string) => boolean, onChange: () => void) {
    this.#dir = resolve(dir);
    this.#accept = accept;
    this.#onChange = onChange;
  }

  /**
   * Makes sure the right directory is watched (it may have appeared,
   * vanished or been replaced since). Returns an error when watching fails
   * for a reason other than the directory not existing.
   */
  ensure(): ServiceConfigError | undefined {
    const w = this.#watched;
    if (
      !this.#broken &&
      w?.isTarget === true &&
      this.#watcher !== undefined &&
      sameDirectory(statOrUndefined(w.path), w.stats)
    ) {
      return undefined;
    }
    return this.#arm();
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#watched = undefined;
  }

  #arm(): ServiceConfigError | undefined {
    // Bounded: each retry means the tree changed under us mid-arm.
    for (let attempt = 0; attempt < 8; attempt++) {
      this.close();
      this.#broken = false;
      let path = this.#dir;
      let nextName = '';
      let stats = statOrUndefined(path);
      while (stats === undefined || !stats.isDirectory()) {
        const parent = dirname(path);
        if (parent === path) return undefined;
        nextName = basename(path);
        path = parent;
        stats = statOrUndefined(path);
      }
      const isTarget = path === this.#dir;
      try {
        const watcher = watch(path, (_event, name) => this.#onEvent(name));
        watcher.on('error', () => {
          // e.g. the directory was removed; re-arm on the next reload.
          this.#broken = true;
          this.#onChange();
        });
        this.#watcher = watcher;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        return unreadable(path, error, 'cannot be watched');
      }
      this.#watched = { path, stats, isTarget, nextName };
      // The next component may have appeared between stat and watch, which
      // no event would report; look again once the watch is in place.
      if (!isTarget && statOrUndefined(join(path, nextName)) !== undefined) continue;
      return undefined;
    }
    return undefined;
  }

  #onEvent(name: string | null): void {
    const w = this.#watched;
    if (w === undefined) return;
    const relevant = name === null || (w.isTarget ? this.#accept(name) : name === w.nextName);
    // Self events (the watched directory deleted or moved) carry its own
    // name, which the filter may drop; catch them by identity instead.
    if (relevant || !sameDirectory(statOrUndefined(w.path), w.stats)) this.#onChange();
  }
}

/**
 * Watches the definition sources and calls `onReload` with a fresh full load
 * after changes settle. It does not load at start: start the watcher first,
 * then call loadServiceDefinitions, so no change can fall between the two.
 * `onReload` must not throw (an exception becomes an uncaught exception, as
 * from an event listener). Throws ServiceConfigError (UNREADABLE) when a
 * watch cannot be set up at all (e.g. inotify limits).
 */
export function watchServiceDefinitions(
  sources: ServiceConfigSources,
  onReload: (result: ServiceConfigLoad) => void,
  { debounceMs = 100 }: WatchServiceOptions = {},
): ServiceConfigWatcher {
  if (!Number.isFinite(debounceMs) || debounceMs < 0 || debounceMs > MAX_TIMER_MS) {
    throw new RangeError(`debounceMs must be from 0 to ${MAX_TIMER_MS}, got ${debounceMs}`);
  }
  // A steady stream of writes must not postpone the reload forever.
  const maxWaitMs = Math.max(debounceMs * 10, 1000);
  let timer: NodeJS.Timeout | undefined;
  let firstEventAt: number | undefined;
  let loading = false;
  let changedWhileLoading = false;
  let closed = false;

  const schedule = (): void => {
    if (closed) return;
    const now = performance.now();
    firstEventAt ??= now;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(debounceMs, firstEventAt + maxWaitMs - now));
    timer = setTimeout(() => {
      reload().catch((error: unknown) => {
        process.nextTick(() => {
          throw error;
        });
      });
    }, wait);
  };

  const watches: DirectoryWatch[] = [];
  const { dir, file } = sources;
  if (dir !== undefined) watches.push(new DirectoryWatch(dir, isConfigFileName, schedule));
  if (file !== undefined) {
    const name = basename(file);
    watches.push(new DirectoryWatch(dirname(file), (n) => n === name, schedule));
  }

  const reload = async (): Promise<void> => {
    timer = undefined;
    firstEventAt = undefined;
    if (closed) return;
    if (loading) {
      changedWhileLoading = true;
      return;
    }
    loading = true;
    let result: ServiceConfigLoad;
    try {
      // Re-arm before loading: anything that changes after this point
      // raises an event, and anything before it is in the load.
      const watchErrors = watches.map((w) => w.ensure()).filter((e) => e !== undefined);
      const loaded = await loadServiceDefinitions(sources);
      result = { services: loaded.services, errors: [...watchErrors, ...loaded.errors] };
    } finally {
      loading = false;
    }
    if (closed) return;
    if (changedWhileLoading) {
      changedWhileLoading = false;
      schedule();
    }
    onReload(result);
  };

  for (const w of watches) {
    const error = w.ensure();
    if (error !== undefined) {
      for (const other of watches) other.close();
      throw error;
    }
  }

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      for (const w of watches) w.close();
    },
  };
}
