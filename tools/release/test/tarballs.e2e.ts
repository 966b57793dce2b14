// Each public package's tarball as `npm pack` would make it, held to its
// allow-list (src/allow-lists.ts): nothing unlisted ships, nothing required
// is missing, every source map and entry point names a file that ships, and
// the manifest a user installs names our other packages by a range that
// resolves. Needs the build (dist/, prebuilds/): CI runs it after `nx build`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkFileList, PUBLIC_PACKAGES, type TarballRules } from '../src/allow-lists.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  engines?: { node?: string };
  repository?: { type?: string; url?: string; directory?: string };
  publishConfig?: { access?: string };
  license?: string;
  main?: string;
  types?: string;
  typings?: string;
  bin?: string | Record<string, string>;
  exports?: unknown;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

interface Packed {
  name: string;
  version: string;
  /** Bytes of the .tgz. */
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/** Every workspace package by name: the versions internal ranges must name. */
function workspaceManifests(): Map<string, { dir: string; manifest: Manifest }> {
  const byName = new Map<string, { dir: string; manifest: Manifest }>();
  for (const group of ['packages', 'apps', 'tools']) {
    const groupDir = join(repoRoot, group);
    if (!existsSync(groupDir)) continue;
    for (const entry of readdirSync(groupDir)) {
      const file = join(groupDir, entry, 'package.json');
      if (!existsSync(file)) continue;
      const manifest = readJson<Manifest>(file);
      byName.set(manifest.name, { dir: `${group}/${entry}`, manifest });
    }
  }
  return byName;
}

/** `npm pack --dry-run`, lifecycle scripts included, exactly as `npm publish` would pack. */
function pack(name: string): Packed {
  const run = spawnSync('npm', ['pack', '--dry-run', '--json', '-w', name], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`npm pack -w ${name} exited ${run.status}:\n${run.stderr}`);
  let parsed: Packed[];
  try {
    parsed = JSON.parse(run.stdout) as Packed[];
  } catch (error) {
    throw new Error(`npm pack -w ${name} printed no JSON:\n${run.stdout}`, { cause: error });
  }
  const [packed] = parsed;
  if (parsed.length !== 1 || packed === undefined || packed.name !== name) {
    throw new Error(`npm pack -w ${name} packed ${parsed.map((p) => p.name).join(', ')}`);
  }
  return packed;
}

/** Every relative path an exports map names (conditions and subpaths, nested). */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (Array.isArray(exports)) return exports.flatMap(exportTargets);
  if (exports !== null && typeof exports === 'object') {
    return Object.values(exports).flatMap(exportTargets);
  }
  return [];
}

/** Package-relative POSIX path of a manifest path like `./dist/index.js`. */
const relative = (path: string) => posix.normalize(path).replace(/^\.\//, '');

/** Node's subpath pattern: `*` matches any string, slashes included. */
function patternMatches(pattern: string, file: string): boolean {
  const [head = '', ...rest] = pattern.split('*');
  if (rest.length === 0) return pattern === file;
  const tail = rest.join('*');
  return file.startsWith(head) && file.endsWith(tail) && file.length > head.length + tail.length;
}

const INTERNAL = /^@handoff\//;

it('every public workspace package has an allow-list, and every allow-list a package', () => {
  const published = [...workspaceManifests().values()]
    .filter(({ manifest }) => manifest.private !== true)
    .map(({ dir, manifest }) => `${manifest.name} ${dir}`)
    .sort();
  expect(published).toEqual(PUBLIC_PACKAGES.map((r) => `${r.name} ${r.dir}`).sort());
});

describe.each(PUBLIC_PACKAGES.map((rules) => [rules.name, rules] as const))(
  '%s',
  (_name, rules: TarballRules) => {
    const dir = join(repoRoot, rules.dir);
    let packed: Packed;
    let files: string[];
    let shipped: Set<string>;
    let manifest: Manifest;

    beforeAll(() => {
      packed = pack(rules.name);
      files = packed.files.map((f) => f.path).sort();
      shipped = new Set(files);
      manifest = readJson<Manifest>(join(dir, 'package.json'));
      console.log(
        JSON.stringify({
          case: 'release.tarball',
          name: packed.name,
          version: packed.version,
          files: files.length,
          packedBytes: packed.size,
          unpackedBytes: packed.unpackedSize,
        }),
      );
    });

    it('ships only allowed files, and every required one', () => {
      expect(checkFileList(rules, files)).toEqual({ notAllowed: [], missing: [] });
    });

    it('ships the README, LICENSE and CHANGELOG the package directory has', () => {
      const present = ['README.md', 'LICENSE', 'CHANGELOG.md'].filter((f) =>
        existsSync(join(dir, f)),
      );
      expect(present).toContain('LICENSE');
      expect(present.filter((f) => !shipped.has(f))).toEqual([]);
    });

    it("every source map's sources and file, and every sourceMappingURL, are in the tarball", () => {
      const unresolved: string[] = [];
      for (const file of files) {
        const base = posix.dirname(file);
        if (file.endsWith('.map')) {
          const map = readJson<{ file?: string; sourceRoot?: string; sources?: string[] }>(
            join(dir, file),
          );
          const root = map.sourceRoot ?? '';
          for (const source of map.sources ?? []) {
            const target = posix.normalize(posix.join(base, root, source));
            if (!shipped.has(target)) unresolved.push(`${file}: source ${source} → ${target}`);
          }
          if (map.file !== undefined && !shipped.has(posix.join(base, map.file))) {
            unresolved.push(`${file}: file ${map.file}`);
          }
          if ((map.sources ?? []).length === 0) unresolved.push(`${file}: no sources`);
        } else if (/\.(?:[cm]?js|d\.[cm]?ts)$/.test(file)) {
          const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(
            readFileSync(join(dir, file), 'utf8'),
          )?.[1];
          if (url === undefined || url.startsWith('data:')) continue;
          const target = posix.normalize(posix.join(base, url));
          if (!shipped.has(target)) unresolved.push(`${file}: sourceMappingURL ${url}`);
        }
      }
      expect(unresolved).toEqual([]);
      expect(files.some((f) => f.endsWith('.js.map'))).toBe(true);
    });

    it('every path in exports, main, types and bin is a shipped file', () => {
      const bin =
        typeof manifest.bin === 'string' ? [manifest.bin] : Object.values(manifest.bin ?? {});
      const named = [
        ...exportTargets(manifest.exports),
        ...[manifest.main, manifest.types, manifest.typings].filter((p) => p !== undefined),
        ...bin,
      ].map(relative);
      expect(named.length).toBeGreaterThan(0);
      const missing = named.filter((path) =>
        path.includes('*') ? !files.some((f) => patternMatches(path, f)) : !shipped.has(path),
      );
      expect(missing).toEqual([]);
    });

    it('names our packages by ^<their version>, runs on the one engines range, and says where it lives', () => {
      const workspace = workspaceManifests();
      const root = readJson<Manifest>(join(repoRoot, 'package.json'));
      const ranges = {
        ...manifest.dependencies,
        ...manifest.peerDependencies,
        ...manifest.optionalDependencies,
      };
      const wrong = Object.entries(ranges)
        .filter(([dep]) => INTERNAL.test(dep))
        .flatMap(([dep, range]) => {
          const target = workspace.get(dep);
          if (target === undefined) return [`${dep}: not a workspace package`];
          if (target.manifest.private === true) return [`${dep}: private, cannot be installed`];
          const want = `^${target.manifest.version}`;
          return range === want ? [] : [`${dep}: ${range}, want ${want}`];
        });
      expect(wrong).toEqual([]);
      expect(root.engines?.node).toBeDefined();
      expect(manifest).toMatchObject({
        license: 'MIT',
        engines: { node: root.engines?.node },
        repository: {
          type: 'git',
          url: 'git+https://github.com/handoff-dev/handoff.git',
          directory: rules.dir,
        },
        publishConfig: { access: 'public' },
      });
    });

    it.runIf(rules.name === '@handoff/broker')(
      "the built CLI's --version is package.json's version",
      () => {
        const run = spawnSync(
          process.execPath,
          [join(dir, 'dist', 'cli', 'main.js'), '--version'],
          {
            encoding: 'utf8',
          },
        );
        expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
          status: 0,
          stdout: `${manifest.version}\n`,
          stderr: '',
        });
      },
    );
  },
);
