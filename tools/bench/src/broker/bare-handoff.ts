// Starting the floors written in bare-handoff.mjs for the broker and
// capacity suites: a Node handoff's "daemon" (control socket + its own
// direct echo listener) and its "broker", each in its own process, both
// ready; and the Hello floor, one process.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { stopChildren, untilReady } from './child-processes.ts';

export interface BareHandoff {
  /** Where a client connects to be handed to the bare daemon. */
  brokerPath: string;
  /** The bare daemon's own echo listener: the direct route the floor is compared with. */
  directPath: string;
  /** The broker's and the daemon's pids (for CPU accounting). */
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * `bare`: the fd passed on, nothing read. `hello`: the Hello-reading floor
 * (the broker waits for the client's first bytes and passes them on with
 * the fd). `wire`: the handoff of record done the cheapest right way. See
 * bare-handoff.mjs.
 */
export type FloorKind = 'bare' | 'hello' | 'wire';

/** A command a floor process runs under (valgrind, for the instructions suite), and node flags of its own. */
export interface RunUnder {
  prefix: readonly string[];
  nodeArgs?: readonly string[];
}

/** One floor process, ready; it never waits forever for one that exited first. */
async function startFloorProcess(
  nodeArgs: readonly string[],
  role: string,
  a: string,
  b: string,
  under?: RunUnder,
): Promise<ChildProcess> {
  const script = join(import.meta.dirname, 'bare-handoff.mjs');
  const argv = [
    ...(under?.prefix ?? []),
    process.execPath,
    ...nodeArgs,
    ...(under?.nodeArgs ?? []),
    script,
    role,
    a,
    b,
  ];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Ready, or gone before it was (a socket path taken, say).
  await untilReady(child, `bare-handoff.mjs ${role}`);
  return child;
}

export interface HelloFloor {
  /** Where a client sends its Hello. */
  path: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * The Hello floor (bare-handoff.mjs wire-hello): the reconnect route of
 * record done the cheapest right way, answering Hellos for `service` at
 * `version` with a Negotiated naming `endpoint`.
 */
export async function startHelloFloor(
  path: string,
  {
    service,
    version,
    endpoint,
    nodeArgs = [],
    under,
  }: {
    service: string;
    version: string;
    endpoint: string;
    /** As startBareHandoff's. */
    nodeArgs?: readonly string[];
    /** A command it runs under (valgrind, for the instructions suite). */
    under?: RunUnder;
  },
): Promise<HelloFloor> {
  const child = await startFloorProcess(
    nodeArgs,
    'wire-hello',
    path,
    `${service}=${version}=${endpoint}`,
    under,
  );
  return { path, pid: child.pid!, stop: () => stopChildren([child]) };
}

export async function startBareHandoff(
  dir: string,
  {
    kind = 'bare',
    nodeArgs = [],
    under = {},
  }: {
    kind?: FloorKind;
    /** Node flags for both processes (the tests load the packages from source with them). */
    nodeArgs?: readonly string[];
    /** The broker or the daemon run under a command (valgrind, for the instructions suite). */
    under?: { broker?: RunUnder; daemon?: RunUnder };
  } = {},
): Promise<BareHandoff> {
  const start = (role: string, a: string, b: string) =>
    startFloorProcess(nodeArgs, role, a, b, role.endsWith('daemon') ? under.daemon : under.broker);
  const prefix = kind === 'bare' ? '' : `${kind}-`;
  const control = join(dir, `${prefix}bare-handoff-control.sock`);
  const brokerPath = join(dir, `${prefix}bare-handoff-broker.sock`);
  const directPath = join(dir, `${prefix}bare-handoff-direct.sock`);
  const daemon = await start(`${prefix}daemon`, control, directPath);
  const broker = await start(`${prefix}broker`, brokerPath, control).catch((error) => {
    daemon.kill('SIGKILL');
    throw error;
  });
  return {
    brokerPath,
    directPath,
    pids: () => [broker.pid!, daemon.pid!],
    stop: () => stopChildren([broker, daemon]),
  };
}
