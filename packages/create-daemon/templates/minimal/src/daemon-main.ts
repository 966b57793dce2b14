// The daemon process, as a broker starts it: it sets HANDOFF_ENDPOINT (the
// socket to serve) and HANDOFF_BROKER_CONTROL (where to attach). Started by
// hand: `npx tsx src/daemon-main.ts --endpoint /tmp/some-0700-dir/d.sock`.
// SIGTERM or SIGINT stops it gracefully.
import { parseArgs } from 'node:util';
import { BROKER_ENV } from '@handoff/backend-sdk';
import { startDaemon } from './daemon.js';

const { values } = parseArgs({ options: { endpoint: { type: 'string' } } });
const endpoint = values.endpoint ?? process.env[BROKER_ENV.endpoint];
if (!endpoint) {
  console.error(`give --endpoint PATH or set $${BROKER_ENV.endpoint}`);
  process.exit(2);
}
const daemon = await startDaemon({
  endpoint,
  brokerControlPath: process.env[BROKER_ENV.control],
  serviceName: process.env[BROKER_ENV.service],
  log: (message) => console.error(`daemon: ${message}`),
});
const stop = () => void daemon.close();
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
