// The broker's own version, read from its package.json when first asked, so
// `--version`, STATUS and the client's Hello say what is installed instead of
// a string someone forgot to bump. src/ and dist/ both sit one level below
// the package root, so one relative path serves the sources and the build.
import { createRequire } from 'node:module';

const PACKAGE_NAME = '@handoff/broker';

let known: { version: string | undefined } | undefined;

/**
 * The version in @handoff/broker's package.json; undefined when the file one
 * level above this module is not ours — the code was bundled into another
 * program, which is not an error for a client that only reports it.
 */
export function brokerPackageVersion(): string | undefined {
  known ??= { version: readVersion() };
  return known.version;
}

function readVersion(): string | undefined {
  let manifest: unknown;
  try {
    manifest = createRequire(import.meta.url)('../package.json');
  } catch {
    return undefined;
  }
  const { name, version } = (manifest ?? {}) as { name?: unknown; version?: unknown };
  return name === PACKAGE_NAME && typeof version === 'string' ? version : undefined;
}
