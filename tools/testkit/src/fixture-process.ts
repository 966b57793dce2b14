// A TypeScript fixture run as its own process until it prints `ready <pid>`,
// from source through tsx, or, for another user, as a bundled copy (see
// foreign-user-peer.ts). The fixture's behaviour is its package's.
import { type ReadyProcess, spawnReady, tsxArgs } from './children.js';
import { bundlePeerForUser, type ForeignUserPeer } from './foreign-user-peer.js';

export interface FixtureOptions {
  /** Runs it as this user (needs root and setpriv; see foreignUserUnavailable). */
  asUid?: number;
  /** Working directory when run from source; a bundled copy runs in its own dir. */
  cwd?: string;
}

/** Starts `file` with `args`; kill() sends SIGTERM, then SIGKILL after 3 s. */
export async function startFixture(
  file: string,
  args: readonly string[],
  options: FixtureOptions = {},
): Promise<ReadyProcess> {
  // Another user may not be able to enter the checkout (a 0700 home): it
  // runs a bundled copy from a world-readable temp dir instead of the sources.
  const bundle: ForeignUserPeer | null =
    options.asUid === undefined ? null : bundlePeerForUser(file);
  const command = bundle === null ? process.execPath : 'setpriv';
  const argv =
    bundle === null
      ? [...tsxArgs, file, ...args]
      : [
          `--reuid=${options.asUid}`,
          `--regid=${options.asUid}`,
          '--clear-groups',
          process.execPath,
          bundle.script,
          ...args,
        ];
  const cwd = bundle?.dir ?? options.cwd;
  const label = file.slice(file.lastIndexOf('/') + 1);
  try {
    const ready = await spawnReady(command, argv, {
      label,
      forceAfterMs: 3000,
      ...(cwd === undefined ? {} : { cwd }),
    });
    if (bundle !== null) ready.child.once('exit', () => bundle.remove());
    return ready;
  } catch (err) {
    bundle?.remove();
    throw err;
  }
}
