// The check `serve` makes of its configuration before it starts: the
// directory must exist, every file must load. Loading itself stays lenient
// (load.ts: one bad file never hides the good ones, and a reload keeps the
// last good set, reload-state.ts); a start with nothing to go on is refused.
import { stat } from 'node:fs/promises';
import { ConfigError, configErrorFrom } from './config-error.js';
import { loadServiceDefinitions, type ServiceConfigLoad } from './load.js';

export interface StartupConfigSources {
  dir?: string;
  file?: string;
  /** The directory is the per-user default, not one the user named (for the hint). */
  dirIsDefault?: boolean;
}

export interface StartupConfigCheck {
  /** What loaded (the good definitions, and every problem). */
  load: ServiceConfigLoad;
  /** Why serve should refuse to start, or null. */
  error: ConfigError | null;
}

async function checkDirectory(dir: string, isDefault: boolean): Promise<ConfigError | null> {
  const hint = isDefault
    ? ' (the default directory: create it, or pass --config-dir DIR or --config-file FILE)'
    : '';
  try {
    const info = await stat(dir);
    if (info.isDirectory()) return null;
    return new ConfigError('CONFIG_DIR_MISSING', `${dir}: is not a directory${hint}`, {
      file: dir,
    });
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') {
      return new ConfigError('CONFIG_DIR_MISSING', `${dir}: does not exist${hint}`, {
        file: dir,
        cause: error,
      });
    }
    return new ConfigError('CONFIG_UNREADABLE', `${dir}: cannot be read: ${errno ?? error}`, {
      file: dir,
      cause: error,
    });
  }
}

/** Loads the sources once and says whether a start on them should be refused. */
export async function checkStartupConfig(
  sources: StartupConfigSources,
): Promise<StartupConfigCheck> {
  const dirError =
    sources.dir === undefined ? null : await checkDirectory(sources.dir, !!sources.dirIsDefault);
  const load = await loadServiceDefinitions({
    ...(sources.dir === undefined ? {} : { dir: sources.dir }),
    ...(sources.file === undefined ? {} : { file: sources.file }),
  });
  const error = dirError ?? (load.errors.length > 0 ? configErrorFrom(load.errors) : null);
  return { load, error };
}
