// The daemon the broker scenario's broker spawns on demand: it serves
// payload protocol 0xF001 and attaches to the broker to take handoffs.
import {
  BROKER_ENV,
  BrokerAttachment,
  currentDaemonProcess,
  serveDaemon,
} from '@handoff/backend-sdk';

const endpoint = process.env[BROKER_ENV.endpoint];
if (endpoint === undefined)
  throw new Error(`${BROKER_ENV.endpoint} is not set: start me from a broker`);
const server = await serveDaemon({
  endpoint,
  identity: await currentDaemonProcess(endpoint),
  payloadProtocols: [0xf001],
  onRequest: (frame) =>
    new TextEncoder().encode(
      `hello ${new TextDecoder().decode(frame.payload)} from ${process.pid}`,
    ),
});
const attachment = new BrokerAttachment({
  server,
  serviceName: process.env[BROKER_ENV.service] ?? 'greeter',
});
attachment.start();
process.on('SIGTERM', () => {
  attachment.close();
  void server.close({ deadlineMs: 500 }).then(() => process.exit(0));
});
