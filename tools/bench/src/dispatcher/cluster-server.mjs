// The baseline, in its own process tree: node:cluster with round-robin
// scheduling (the primary accepts and sends each connection to a worker
// over the IPC channel), the same worker count and the same handler.
//   cluster-server.mjs <port> <workers>    prints "ready" once every worker listens
import cluster from 'node:cluster';
import { createHelloServer } from './hello-handler.mjs';

cluster.schedulingPolicy = cluster.SCHED_RR;
const [port, workers] = process.argv.slice(2).map(Number);

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
