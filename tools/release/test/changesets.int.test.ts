// What `changeset version` does to this workspace, run for real on a copy of
// its manifests and .changeset/config.json in a throwaway git repository:
// a bump reaches every package that depends on the bumped one (versions and
// ranges, so an install of one package never pulls a stale sibling), each
// bumped package gets a CHANGELOG.md, and private packages are never versioned.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const changesetBin = join(repoRoot, 'node_modules', '.bin', 'changeset');
const WORKSPACE_GROUPS = ['packages', 'apps', 'tools'];
const DEPENDENCY_FIELDS = [
  'dependencies',
  'devDependencies',
  'peerDependencies',
  'optionalDependencies',
] as const;

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

interface Workspace {
  /** Package directory relative to the repository root. */
  dir: string;
  manifest: Manifest;
}

const readManifest = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Manifest;

const scratch: string[] = [];
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    // Nothing from the user's git config (signing, hooks, default branch).
    env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.status}:\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout + result.stderr;
}

const git = (cwd: string, ...args: string[]) =>
  run(
    'git',
    ['-c', 'user.name=release test', '-c', 'user.email=release@test.invalid', ...args],
    cwd,
  );

/**
 * A git repository holding the root manifest, every workspace manifest and
 * the changesets config (plus `changesets`, file name → text), committed.
 * node_modules is linked so the config's changelog generator resolves.
 */
function workspaceCopy(changesets: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-changesets-'));
  scratch.push(dir);
  copyFileSync(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  mkdirSync(join(dir, '.changeset'));
  copyFileSync(join(repoRoot, '.changeset', 'config.json'), join(dir, '.changeset', 'config.json'));
  for (const { dir: pkgDir } of readWorkspaces(repoRoot).values()) {
    mkdirSync(join(dir, pkgDir), { recursive: true });
    copyFileSync(join(repoRoot, pkgDir, 'package.json'), join(dir, pkgDir, 'package.json'));
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, '.gitignore'), 'node_modules\n');
  git(dir, 'init', '--quiet', '--initial-branch=main');
  git(dir, 'add', '--all');
  git(dir, 'commit', '--quiet', '--message', 'workspace');
  for (const [name, text] of Object.entries(changesets)) {
    writeFileSync(join(dir, '.changeset', name), text);
  }
  return dir;
}

/** Every workspace package of the repository at `root`, by name. */
function readWorkspaces(root: string): Map<string, Workspace> {
  const byName = new Map<string, Workspace>();
  for (const group of WORKSPACE_GROUPS) {
    const groupDir = join(root, group);
    if (!existsSync(groupDir)) continue;
    for (const entry of readdirSync(groupDir).sort()) {
      const file = join(groupDir, entry, 'package.json');
      if (!existsSync(file)) continue;
      const manifest = readManifest(file);
      byName.set(manifest.name, { dir: `${group}/${entry}`, manifest });
    }
  }
  return byName;
}

function bump(version: string, kind: 'minor' | 'patch'): string {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (match === null) throw new Error(`not a plain release version: ${version}`);
  const [, major, minor, patch] = match.map(Number) as [number, number, number, number];
  return kind === 'minor' ? `${major}.${minor + 1}.0` : `${major}.${minor}.${patch + 1}`;
}

/**
 * The versions a minor bump of `root` should produce: it, then (to a fixed
 * point) every public package whose dependencies name a bumped package gets
 * a patch — config.json's updateInternalDependencies: "patch".
 */
function expectedVersions(workspaces: Map<string, Workspace>, root: string): Map<string, string> {
  const rootPackage = workspaces.get(root);
  if (rootPackage === undefined) throw new Error(`${root} is not a workspace package`);
  const bumped = new Map([[root, bump(rootPackage.manifest.version, 'minor')]]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name, { manifest }] of workspaces) {
      if (manifest.private === true || bumped.has(name)) continue;
      const runtime = { ...manifest.dependencies, ...manifest.optionalDependencies };
      if (Object.keys(runtime).some((dep) => bumped.has(dep))) {
        bumped.set(name, bump(manifest.version, 'patch'));
        grew = true;
      }
    }
  }
  return bumped;
}

describe('changeset version', () => {
  it('a minor @handoff/protocol moves every dependent: versions, ranges and changelogs; private packages keep their version', () => {
    const summary = 'A new protocol feature, for the changesets test.';
    const dir = workspaceCopy({
      'protocol-feature.md': `---\n"@handoff/protocol": minor\n---\n\n${summary}\n`,
    });
    const before = readWorkspaces(dir);
    const want = expectedVersions(before, '@handoff/protocol');
    // The dependency chain this repository has: if it ever stops holding,
    // the expectation above has stopped testing anything interesting.
    expect([...want.keys()]).toEqual(
      expect.arrayContaining(['@handoff/protocol', '@handoff/backend-sdk', '@handoff/broker']),
    );

    run(changesetBin, ['version'], dir);

    const after = readWorkspaces(dir);
    expect([...after.keys()]).toEqual([...before.keys()]);
    const versions = (source: Map<string, Workspace>) =>
      Object.fromEntries([...source].map(([name, w]) => [name, w.manifest.version]));
    expect(versions(after)).toEqual({
      ...versions(before),
      ...Object.fromEntries(want),
    });

    // Every internal range on a bumped package, in every workspace package
    // (private ones too, so the workspace still links), names the new version.
    const ranges = (source: Map<string, Workspace>) =>
      [...source].flatMap(([name, { manifest }]) =>
        DEPENDENCY_FIELDS.flatMap((field) =>
          Object.entries(manifest[field] ?? {}).map(([dep, range]) => ({
            name,
            field,
            dep,
            range,
          })),
        ),
      );
    const beforeRanges = ranges(before);
    const wantRanges = beforeRanges.map((r) => {
      const moved = want.get(r.dep);
      return moved === undefined ? r : { ...r, range: `^${moved}` };
    });
    expect(ranges(after)).toEqual(wantRanges);
    expect(wantRanges.filter((r, i) => r.range !== beforeRanges[i]?.range).length).toBeGreaterThan(
      0,
    );

    for (const [name, { dir: pkgDir }] of after) {
      const changelog = join(dir, pkgDir, 'CHANGELOG.md');
      const version = want.get(name);
      if (version === undefined) {
        expect(existsSync(changelog), `${name} has no changes, so no changelog`).toBe(false);
        continue;
      }
      const text = readFileSync(changelog, 'utf8');
      expect(text.startsWith(`# ${name}\n\n## ${version}\n`), name).toBe(true);
      expect(text, name).toContain(name === '@handoff/protocol' ? summary : 'Updated dependencies');
    }
    expect(readdirSync(join(dir, '.changeset'))).toEqual(['config.json']);
  });

  it("the repository's pending changesets version cleanly and never version a private package", () => {
    const pending = Object.fromEntries(
      readdirSync(join(repoRoot, '.changeset'))
        .filter((file) => file.endsWith('.md') && file !== 'README.md')
        .map((file) => [file, readFileSync(join(repoRoot, '.changeset', file), 'utf8')]),
    );
    const named = new Set(
      Object.values(pending).flatMap((text) =>
        [
          ...(/^---\n([\s\S]*?)\n---/.exec(text)?.[1] ?? '').matchAll(/^["']?([^"':]+)["']?\s*:/gm),
        ].map((m) => m[1] as string),
      ),
    );
    const dir = workspaceCopy(pending);
    const before = readWorkspaces(dir);
    for (const name of named) {
      expect(before.get(name)?.manifest.private, `${name} in a changeset is public`).not.toBe(true);
    }

    run(changesetBin, ['version'], dir);

    const after = readWorkspaces(dir);
    for (const [name, { dir: pkgDir, manifest }] of after) {
      const was = before.get(name)?.manifest;
      if (was?.private === true) {
        expect(manifest.version, name).toBe(was.version);
        expect(existsSync(join(dir, pkgDir, 'CHANGELOG.md')), name).toBe(false);
      } else if (named.has(name)) {
        expect(existsSync(join(dir, pkgDir, 'CHANGELOG.md')), name).toBe(true);
      }
    }
    // The versions a release made now would publish, for the release notes.
    console.log(
      JSON.stringify({
        case: 'release.pending_versions',
        ...Object.fromEntries(
          [...after]
            .filter(([, w]) => w.manifest.private !== true)
            .map(([name, w]) => [
              name,
              `${before.get(name)?.manifest.version} → ${w.manifest.version}`,
            ]),
        ),
      }),
    );
  });
});
