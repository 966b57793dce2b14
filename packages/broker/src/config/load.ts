// Loading service definitions: a directory of `*.json` files, one explicit
// file and in-memory values, each file read with a size cap, parsed, and
// checked for the same name@version defined twice. What one definition may
// hold is definition.ts; reloading on change is watch.ts.
//
// Loading never throws for bad content: each unreadable file or invalid
// definition becomes a ServiceConfigError naming the file and the field path,
// and every valid definition elsewhere still loads, so one typo cannot take
// down the services that were fine.
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  describe,
  EMBEDDED_SOURCE,
  IDENTIFIER_KEY,
  isRecord,
  parseServiceDefinition,
  ServiceConfigError,
  type ServiceDefinition,
} from './definition.js';
import { jsonErrorPosition } from './json-position.js';

const DEV_NULL = '/dev/null';

/** Config files are small; anything bigger is refused before it is read. */
export const MAX_SERVICE_CONFIG_BYTES = 1024 * 1024;

export interface ServiceConfigSources {
  /** A directory of `*.json` files; a missing directory holds no services. */
  dir?: string;
  /** One config file named explicitly; missing is an error (`/dev/null`: no services). */
  file?: string;
  /** Definitions supplied in memory (e.g. by an embedding program). */
  embedded?: readonly unknown[];
}

export interface ServiceConfigLoad {
  services: ServiceDefinition[];
  errors: ServiceConfigError[];
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

export function unreadable(
  file: string,
  error: unknown,
  what = 'cannot be read',
): ServiceConfigError {
  const e = error as NodeJS.ErrnoException;
  return new ServiceConfigError('UNREADABLE', file, `${what}: ${e?.code ?? e?.message ?? e}`, {
    cause: error,
    errno: e?.code,
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
  // The conventional "no configuration" (as `ssh -F /dev/null`): no services, no error.
  if (resolve(file) === DEV_NULL) return;
  const read = await readConfigFile(file);
  if ('missing' in read) {
    if (missingIsError) {
      out.errors.push(
        new ServiceConfigError('UNREADABLE', file, 'does not exist', { errno: 'ENOENT' }),
      );
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
        ...jsonErrorPosition(read.text, error),
      }),
    );
    return;
  }
  parseDocument(doc, file, out);
}

/** `*.json`, skipping dotfiles: editors' temp and lock files (`.#a.json`). */
export function isConfigFileName(name: string): boolean {
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
