// Test peers that run as another user (nobody): the peer's TypeScript entry
// is bundled with the workspace sources into one plain .mjs and copied, with
// the fdpass addon, into a fresh world-readable temp dir. The peer then needs
// nothing from the checkout, which may sit under a directory (a 0700 home, a
// mktemp -d folder) that user cannot enter. Also says when it cannot work.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

export const NOBODY = 65534;

export interface ForeignUserPeer {
  /** The bundled peer: run it with plain `node <script>`, no loader. */
  script: string;
  /** The world-readable directory holding it; a good cwd for the peer. */
  dir: string;
  remove(): void;
}

function fdpassAddon(): string {
  const fdpassRoot = dirname(
    createRequire(import.meta.url).resolve('@handoff/fdpass/package.json'),
  );
  const built = ['Release', 'Debug']
    .map((flavour) => join(fdpassRoot, 'build', flavour, 'fdpass.node'))
    .find((path) => existsSync(path));
  if (built === undefined) throw new Error(`no built fdpass addon under ${fdpassRoot}/build`);
  return built;
}

/**
 * esbuild's own command line in a child that exits: its JS API would keep a
 * service process and a worker thread alive in the test process, and those
 * hold fds the leak checks count.
 */
function bundle(entry: string, outfile: string): void {
  const require = createRequire(import.meta.url);
  const esbuild = join(dirname(require.resolve('esbuild/package.json')), 'bin', 'esbuild');
  const run = spawnSync(
    esbuild,
    [
      entry,
      '--bundle',
      '--platform=node',
      '--format=esm',
      '--target=node20',
      '--conditions=@handoff/source',
      // Bundled CommonJS dependencies call require() for Node built-ins.
      "--banner:js=import { createRequire as __peerRequire } from 'node:module'; const require = __peerRequire(import.meta.url);",
      `--outfile=${outfile}`,
      '--log-level=error',
    ],
    { encoding: 'utf8' },
  );
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`esbuild could not bundle ${entry}:\n${run.stderr}`);
}

/**
 * Bundles `entry` for a peer of another user. The layout mirrors a package
 * (bin/<peer>.mjs beside build/Release/fdpass.node) because fdpass's loader
 * looks for build/ one level above the module that loads it.
 */
export function bundlePeerForUser(entry: string): ForeignUserPeer {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-peer-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const script = join(dir, 'bin', basename(entry).replace(/\.[cm]?ts$/, '.mjs'));
    bundle(entry, script);
    const addon = join(dir, 'build', 'Release', 'fdpass.node');
    mkdirSync(dirname(addon), { recursive: true });
    copyFileSync(fdpassAddon(), addon);
    // mkdtemp makes 0700; the umask may have narrowed the rest.
    for (const d of [dir, join(dir, 'bin'), join(dir, 'build'), dirname(addon)])
      chmodSync(d, 0o755);
    for (const f of [script, addon]) chmodSync(f, 0o644);
    return { script, dir, remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/**
 * Why a process cannot be run as `uid` here (null when it can): switching
 * users needs root and setpriv, and the node binary itself must be
 * executable by that user (it is not when node lives in a private home).
 */
export function foreignUserUnavailable(uid: number): string | null {
  if (process.getuid?.() !== 0) return 'switching to another user needs root';
  const run = spawnSync(
    'setpriv',
    [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', ''],
    { cwd: tmpdir(), encoding: 'utf8' },
  );
  if (run.error) return `setpriv is not available (${run.error.message})`;
  if (run.status !== 0) {
    return `uid ${uid} cannot run ${process.execPath}: ${run.stderr.trim() || `exit ${run.status}`}`;
  }
  return null;
}
