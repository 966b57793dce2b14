// The baseline, in its own process tree: node:cluster with round-robin
// scheduling (the primary accepts and sends each connection to a worker
// over the IPC channel), the same worker count and the same handler.
// With `none`, SCHED_NONE: the workers share the listening socket and accept
// themselves — no process between the kernel and the worker, the ceiling
// of any dispatcher with these workers (the suite's `ceiling` line).
//   cluster-server.mjs <port> <workers> [rr|none]   prints "ready" once every worker listens
import cluster from 'node:cluster';
import { createHelloServer } from './hello-handler.mjs';

cluster.schedulingPolicy = process.argv[4] === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
const [port, workers] = process.argv.slice(2, 4).map(Number);

if (cluster.isPrimary) {
  cluster.setupPrimary({ execArgv: [] });
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('listening', () => {
      if (++listening === workers) process.stdout.write('ready\n');
    });
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  });
} else {
  createHelloServer().listen({ port, host: '127.0.0.1', backlog: 4096 });
}
