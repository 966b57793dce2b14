// The versions a generated project depends on: our published packages at
// "^<the version this create-daemon was built with>", and the third-party
// packages they share with it at the ranges the repository uses. Read from
// the workspace's package.json files at build time and shipped as
// dist/versions.json, so a project never asks for "*" or a file: path.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateDaemonError } from './errors.js';

/** Package name → the range a generated project asks for. */
export type Versions = Readonly<Record<string, string>>;

/** Ours, depended on by every generated project. */
export const HANDOFF_PACKAGES = ['@handoff/backend-sdk', '@handoff/broker', '@handoff/protocol'];

/**
 * Third-party packages whose range is the repository's own (so projects
 * test against what the packages were tested with): where to read each.
 */
const SHARED_RANGES: readonly (readonly [string, string])[] = [
  ['pino', 'packages/broker/package.json'],
  ['protobufjs', 'packages/protocol/package.json'],
  ['protobufjs-cli', 'tools/codegen/package.json'],
  ['fast-check', 'package.json'],
  ['typescript', 'package.json'],
  ['vitest', 'package.json'],
  ['tsx', 'package.json'],
  ['@types/node', 'package.json'],
];

/** The workspace's package.json files do not give a usable version or range. */
export class VersionsError extends CreateDaemonError {
  static override readonly brand: string = '@handoff/create-daemon:VersionsError';
  override readonly name = 'VersionsError';
  declare readonly code: 'VERSIONS';
  constructor(message: string, options?: { cause?: unknown }) {
    super('VERSIONS', message, options);
  }
}

function manifest(root: string, path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(join(root, path), 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new VersionsError(`cannot read ${path} in ${root}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Every range a project may need, from the repository at `root`. */
export function collectVersions(root: string): Versions {
  const versions: Record<string, string> = {};
  for (const name of HANDOFF_PACKAGES) {
    const { version } = manifest(root, `packages/${name.slice('@handoff/'.length)}/package.json`);
    if (typeof version !== 'string' || !/^\d+\.\d+\.\d+$/.test(version)) {
      throw new VersionsError(`${name} has version ${JSON.stringify(version)}, not x.y.z`);
    }
    versions[name] = `^${version}`;
  }
  for (const [name, path] of SHARED_RANGES) {
    const m = manifest(root, path) as Record<string, Record<string, string> | undefined>;
    const range = m.dependencies?.[name] ?? m.devDependencies?.[name];
    if (range === undefined || range === '*' || /^(?:file|link|workspace):/.test(range)) {
      throw new VersionsError(`${path} has no usable range for ${name} (${String(range)})`);
    }
    versions[name] = range;
  }
  return versions;
}

/** The repository this package sits in, when it runs from its sources. */
export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

/**
 * dist/versions.json when built; from its sources (tests), the repository's
 * package.json files, which are what the build would write.
 */
export function loadVersions(): Versions {
  const built = join(import.meta.dirname, 'versions.json');
  if (existsSync(built)) return JSON.parse(readFileSync(built, 'utf8')) as Versions;
  return collectVersions(REPO_ROOT);
}
