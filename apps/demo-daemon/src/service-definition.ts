// What a broker needs to spawn this daemon: its service name and version,
// and a service definition whose command runs daemon-main — the compiled
// one when this module is compiled, the TypeScript source (through tsx)
// when it runs from source, as in the tests.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEMO_KV_SERVICE_NAME = 'demo-kv';
/** The version clients ask the broker for; bump it with the wire. */
export const DEMO_KV_SERVICE_VERSION = '1.0.0';

export interface DemoKvServiceOptions {
  /** Seconds without connections before the daemon exits by itself (default 0: never). */
  idleTimeoutSecs?: number;
  /** How long the daemon lets running requests finish on SIGTERM (default 5000 ms). */
  drainMs?: number;
  /** pino level for the daemon's logs on stderr (default "info"). */
  logLevel?: string;
  /** How long the broker waits for the daemon to be ready (default 30 s: a cold tsx start is slow). */
  readyTimeoutMs?: number;
  /** Fds the broker keeps for the next daemon (the broker's default: 16; 0: none). */
  fdStoreMax?: number;
  /** Seconds the broker keeps them uncollected (the broker's default: 60). */
  fdStoreMaxAgeSecs?: number;
}

/** The JSON shape of a broker service definition (see @handoff/broker's config/definition.ts). */
export interface DemoKvServiceDefinition {
  name: string;
  version: string;
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  handoff: boolean;
  readyTimeoutMs: number;
  stopGraceMs: number;
  fdStoreMax?: number;
  fdStoreMaxAgeSecs?: number;
}

/**
 * A definition for `startBroker({ services: [...] })` (or a JSON file in the
 * broker's config directory) that spawns this daemon. The broker adds the
 * environment daemon-main reads: HANDOFF_ENDPOINT, HANDOFF_BROKER_CONTROL,
 * HANDOFF_SERVICE_NAME, HANDOFF_SERVICE_VERSION.
 */
export function demoKvServiceDefinition(
  options: DemoKvServiceOptions = {},
): DemoKvServiceDefinition {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const entry = join(dirname(here), fromSource ? 'daemon-main.ts' : 'daemon-main.js');
  const drainMs = options.drainMs ?? 5000;
  return {
    name: DEMO_KV_SERVICE_NAME,
    version: DEMO_KV_SERVICE_VERSION,
    command: process.execPath,
    args: [
      // From source, workspace packages resolve to their TypeScript (the
      // @handoff/source condition) and tsx compiles on the fly.
      ...(fromSource ? ['--conditions=@handoff/source', '--import', 'tsx'] : []),
      entry,
      '--idle-timeout-secs',
      String(options.idleTimeoutSecs ?? 0),
      '--drain-ms',
      String(drainMs),
    ],
    // `--import tsx` resolves from the working directory: the app's own,
    // wherever the broker runs.
    cwd: join(dirname(here), '..'),
    env: { HANDOFF_LOG_LEVEL: options.logLevel ?? 'info' },
    handoff: true,
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    // SIGKILL only after the daemon had its whole drain to finish.
    stopGraceMs: drainMs + 1000,
    ...(options.fdStoreMax === undefined ? {} : { fdStoreMax: options.fdStoreMax }),
    ...(options.fdStoreMaxAgeSecs === undefined
      ? {}
      : { fdStoreMaxAgeSecs: options.fdStoreMaxAgeSecs }),
  };
}
