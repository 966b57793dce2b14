// `npm run bench -- lifecycle`: the broker's zero-downtime lifecycle, each
// case against a baseline of the same run (tools/bench/README.md):
//   broker_upgrade    64 connect loops through 10 in-place upgrades vs 10 stop + start
//   daemon_restart    live sessions and new connections through 10 `restart demo-kv`,
//                     p99 during the restarts vs steady state
//   cold_start_queue  clients at a warming-up daemon's endpoint, broker-owned socket vs not
// A case whose feature is missing prints `"ok":false` and the run exits 1.
// $BENCH_LIFECYCLE_CASES (comma-separated case names) runs some of them;
// $BENCH_LIFECYCLE_CYCLES (default 10) sets the upgrades/restarts per case.
import { brokerUpgradeCase } from './lifecycle/broker-upgrade.ts';
import { coldStartCase } from './lifecycle/cold-start.ts';
import { daemonRestartCase } from './lifecycle/daemon-restart.ts';

export const LIFECYCLE_CASES = ['broker_upgrade', 'daemon_restart', 'cold_start_queue'] as const;

export async function lifecycleSuite(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const wanted = (env.BENCH_LIFECYCLE_CASES ?? LIFECYCLE_CASES.join(','))
    .split(',')
    .map((name) => name.trim().replace(/^lifecycle\./, ''))
    .filter((name) => name !== '');
  const unknown = wanted.filter((name) => !(LIFECYCLE_CASES as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new Error(
      `unknown lifecycle case(s) ${unknown.join(', ')}; cases: ${LIFECYCLE_CASES.join(', ')}`,
    );
  const cycles = Number(env.BENCH_LIFECYCLE_CYCLES ?? 10);
  if (!Number.isInteger(cycles) || cycles < 1)
    throw new Error(
      `BENCH_LIFECYCLE_CYCLES must be a positive integer, not ${env.BENCH_LIFECYCLE_CYCLES}`,
    );
  if (wanted.includes('broker_upgrade'))
    await brokerUpgradeCase({ cycles, loops: 64, settleMs: 1000, pauseMs: 200, quietMs: 3000 });
  if (wanted.includes('daemon_restart'))
    await daemonRestartCase({
      restarts: cycles,
      sessions: 12,
      connectLoops: 8,
      steadyMs: 1500,
      drainMs: 2000,
    });
  if (wanted.includes('cold_start_queue'))
    await coldStartCase({ clients: 32, warmupMs: 1500, spreadMs: 1000 });
}
