// `npm start`: a broker with this daemon registered, on a socket in a fresh
// private directory, so it never meets a broker you already run. The daemon
// starts when the first client asks for it and stops after a minute without
// clients. Ctrl-C stops the broker and the daemon.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from '@handoff/broker';
import pino from 'pino';
import { DEMO_KV_SERVICE_NAME, demoKvServiceDefinition } from './service-definition.js';

// mkdtemp makes it 0700: the broker wants its directory private.
const dir = mkdtempSync(join(tmpdir(), `${DEMO_KV_SERVICE_NAME}-`));
const broker = await startBroker({
  socketPath: join(dir, 'broker.sock'),
  services: [demoKvServiceDefinition({ idleTimeoutSecs: 60, logLevel: 'warn' })],
  watchConfig: false,
  logger: pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2)),
});
console.log(`broker for ${DEMO_KV_SERVICE_NAME} listening on ${broker.socketPath}`);
console.log('try, in another terminal:');
console.log(`  npm run client -- set greeting hello --socket ${broker.socketPath}`);
console.log(`  npm run client -- get greeting --socket ${broker.socketPath}`);

// Ctrl-C reaches npm, tsx and this process at once, and tsx passes it on
// again: one stop, however many signals arrive.
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void broker.close().finally(() => rmSync(dir, { recursive: true, force: true }));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
