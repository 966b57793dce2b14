// `npm run bench -- capacity`: the broker's capacity and scaling (issue 17,
// Deliver 4) — handoff throughput under concurrency, Hello latency and
// startup against the number of defined services, RSS per defined service
// and per attached daemon. Knobs: BENCH_CAPACITY_CASES=throughput,services,daemons
// BENCH_CAPACITY_LOOPS=64,256 BENCH_CAPACITY_ROUNDS=3 BENCH_CAPACITY_HELLOS=2000
// BENCH_CAPACITY_DAEMONS=0,100,1000; BENCH_CAPACITY_V8_DEFAULTS=0 leaves out
// the brokers started with V8's defaults. Ours run with BROKER_NODE_FLAGS,
// as the handoff-broker executable and the systemd unit start them.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BROKER_NODE_FLAGS, connectService } from '@handoff/broker';
import { type BareHandoff, startBareHandoff } from './bare-handoff.ts';
import { daemonsCase } from './capacity-daemons.ts';
import { servicesCase } from './capacity-services.ts';
import { throughputCase } from './capacity-throughput.ts';
import { stopChildren } from './child-processes.ts';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const numbers = (text: string) => text.split(',').filter(Boolean).map(Number);

function child(script: string, arg: string, nodeArgs: readonly string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, join(import.meta.dirname, script), arg], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

export async function capacitySuite(): Promise<void> {
  const cases = env('BENCH_CAPACITY_CASES', 'throughput,services,daemons').split(',');
  const root = mkdtempSync(join(tmpdir(), 'handoff-bench-capacity-'));
  try {
    if (cases.includes('throughput')) {
      const brokerPath = join(root, 'run', 'broker.sock');
      const barePath = join(root, 'bare.sock');
      const broker = child('broker-process.mjs', brokerPath, BROKER_NODE_FLAGS);
      const bare = child('capacity-accept-server.mjs', barePath);
      // The same broker started without those flags (V8's default young
      // generation, as a library in a plain process would have it), in the
      // same rounds: what the flags cost or buy.
      const defaultsPath = join(root, 'v8-defaults', 'run', 'broker.sock');
      const defaults =
        process.env.BENCH_CAPACITY_V8_DEFAULTS === '0'
          ? null
          : child('broker-process.mjs', defaultsPath);
      // The floors (bare-handoff.mjs): a Node handoff that only passes the fd
      // on, one that also waits for the Hello, and the handoff of record done
      // the cheapest right way. Whatever started is stopped.
      const floors: BareHandoff[] = [];
      try {
        const floor = await startBareHandoff(root);
        floors.push(floor);
        const protocolFloor = await startBareHandoff(root, { kind: 'hello' });
        floors.push(protocolFloor);
        const wireFloor = await startBareHandoff(root, { kind: 'wire' });
        floors.push(wireFloor);
        await once(broker.stdout!, 'data');
        await once(bare.stdout!, 'data');
        if (defaults) await once(defaults.stdout!, 'data');
        for (const path of defaults ? [brokerPath, defaultsPath] : [brokerPath])
          (
            await connectService('echo', { version: '1.0.0', brokerPath: path, timeoutMs: 60_000 })
          ).socket.destroy();
        await throughputCase(
          brokerPath,
          broker,
          barePath,
          bare,
          {
            bare: { path: floor.brokerPath, pids: floor.pids },
            protocol: { path: protocolFloor.brokerPath, pids: protocolFloor.pids },
            wire: { path: wireFloor.brokerPath, pids: wireFloor.pids },
          },
          BROKER_NODE_FLAGS.join(' '),
          defaults && { path: defaultsPath, broker: defaults },
          {
            loops: numbers(env('BENCH_CAPACITY_LOOPS', '64,256')),
            rounds: Number(env('BENCH_CAPACITY_ROUNDS', '3')),
            warmupMs: 500,
            measureMs: 1500,
          },
        );
      } finally {
        await Promise.all([
          stopChildren(defaults ? [broker, bare, defaults] : [broker, bare]),
          ...floors.map((f) => f.stop()),
        ]);
      }
    }
    if (cases.includes('services'))
      await servicesCase(
        root,
        [0, 1, 100, 1000, 10_000],
        Number(env('BENCH_CAPACITY_HELLOS', '2000')),
      );
    if (cases.includes('daemons'))
      await daemonsCase(root, numbers(env('BENCH_CAPACITY_DAEMONS', '0,100,1000')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
