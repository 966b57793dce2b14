// Loading running-process `.servicedef` files beside our JSON definitions:
// where their directory is, refusing one that is not private, reading each
// file with a cap, and merging the result into a JSON load (a service both
// define is an error naming both files). Synchronous: the broker merges on
// every reload, and a few small files cost less than a second load path.
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { ServiceConfigError, type ServiceDefinition } from '../config/definition.js';
import type { ServiceConfigLoad } from '../config/load.js';
import { ServicedefError } from './errors.js';
import { SERVICEDEF_SUFFIX, servicedefToDefinition } from './servicedef.js';
import { decodeServicedef, MAX_SERVICEDEF_BYTES } from './servicedef-wire.js';

/** More files than this in the directory: the rest are not read (and the load says so). */
export const MAX_SERVICEDEF_FILES = 1024;

/**
 * `$RUNNING_PROCESS_SERVICE_DEF_DIR`, else `$XDG_CONFIG_HOME/running-process/services`
 * (absolute only), else `<home>/.config/running-process/services`.
 */
export function rpServicedefDir(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): string {
  const explicit = env.RUNNING_PROCESS_SERVICE_DEF_DIR;
  if (explicit) return explicit;
  const config = env.XDG_CONFIG_HOME;
  if (config && isAbsolute(config)) return join(config, 'running-process', 'services');
  return join(home, '.config', 'running-process', 'services');
}

function unreadable(file: string, message: string, cause?: unknown): ServiceConfigError {
  return new ServiceConfigError('UNREADABLE', file, message, { cause });
}

/** The directory's files, or an error when it is not a private directory of ours. */
function listDir(dir: string, out: ServiceConfigLoad): string[] {
  let info: ReturnType<typeof lstatSync>;
  try {
    info = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    out.errors.push(unreadable(dir, `cannot be read: ${(error as NodeJS.ErrnoException).code}`));
    return [];
  }
  const uid = process.getuid?.();
  let why: string | null = null;
  if (!info.isDirectory()) why = 'is not a directory (a symlink is not accepted)';
  else if (uid !== undefined && info.uid !== uid) why = `is owned by uid ${info.uid}, not by us`;
  else if ((info.mode & 0o077) !== 0)
    why = `is not private (mode ${(info.mode & 0o777).toString(8)}); running-process service definitions must be in a 0700 directory: chmod 700 ${dir}`;
  if (why !== null) {
    out.errors.push(unreadable(dir, `${why}; no .servicedef file in it was loaded`));
    return [];
  }
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    out.errors.push(
      unreadable(dir, `cannot list the directory: ${(error as NodeJS.ErrnoException).code}`),
    );
    return [];
  }
  const files = names.filter((n) => n.endsWith(SERVICEDEF_SUFFIX) && !n.startsWith('.')).sort();
  if (files.length > MAX_SERVICEDEF_FILES) {
    out.errors.push(
      unreadable(
        dir,
        `holds ${files.length} .servicedef files; only the first ${MAX_SERVICEDEF_FILES} were read`,
      ),
    );
  }
  return files.slice(0, MAX_SERVICEDEF_FILES).map((n) => join(dir, n));
}

/** The file's bytes, its size checked before a buffer exists; a FIFO never blocks the open. */
function readCapped(file: string): Uint8Array {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw unreadable(file, 'is not a regular file');
    if (info.size > MAX_SERVICEDEF_BYTES)
      throw unreadable(
        file,
        `is ${info.size} bytes, over the ${MAX_SERVICEDEF_BYTES}-byte cap; not read`,
      );
    const buffer = Buffer.alloc(info.size + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const n = readSync(fd, buffer, filled, buffer.length - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    if (filled > info.size) throw unreadable(file, 'changed size while being read');
    return buffer.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
}

/** Reads one file: a definition, or an error naming the file and the RP field. */
export function loadServicedefFile(file: string): ServiceDefinition | ServiceConfigError {
  try {
    return servicedefToDefinition(decodeServicedef(readCapped(file)), file);
  } catch (error) {
    if (error instanceof ServiceConfigError) return error;
    if (error instanceof ServicedefError)
      return new ServiceConfigError('INVALID_DEFINITION', file, error.detail, {
        field: error.field,
        cause: error,
      });
    return unreadable(
      file,
      `cannot be read: ${(error as NodeJS.ErrnoException).code ?? error}`,
      error,
    );
  }
}

/** Every `.servicedef` in `dir`, in name order. Never throws: problems are in `errors`. */
export function loadServicedefs(dir: string): ServiceConfigLoad {
  const out: ServiceConfigLoad = { services: [], errors: [] };
  for (const file of listDir(dir, out)) {
    const loaded = loadServicedefFile(file);
    if (loaded instanceof ServiceConfigError) out.errors.push(loaded);
    else out.services.push(loaded);
  }
  return out;
}

/**
 * Our JSON load plus the `.servicedef` one. A service name both define is
 * kept from the JSON file and the `.servicedef` is reported DUPLICATE_SERVICE,
 * naming both files: versions from two sources would silently mix.
 */
export function mergeServicedefs(
  json: ServiceConfigLoad,
  rp: ServiceConfigLoad,
): ServiceConfigLoad {
  const firstSource = new Map<string, string>();
  for (const d of json.services) if (!firstSource.has(d.name)) firstSource.set(d.name, d.source);
  const services = [...json.services];
  const errors = [...json.errors, ...rp.errors];
  for (const d of rp.services) {
    const first = firstSource.get(d.name);
    if (first === undefined) {
      services.push(d);
      continue;
    }
    errors.push(
      new ServiceConfigError(
        'DUPLICATE_SERVICE',
        d.source,
        `service ${d.name} is already defined in ${first}; this definition is ignored`,
        { firstFile: first },
      ),
    );
  }
  return { services, errors };
}
