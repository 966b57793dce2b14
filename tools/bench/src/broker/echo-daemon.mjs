// The daemon the broker suite routes to: serveDaemon echoing payload
// protocol 0xF001, attached to the broker that spawned it. Plain JavaScript
// over the built packages.
import {
  BROKER_ENV,
  BrokerAttachment,
  currentDaemonProcess,
  serveDaemon,
} from '@handoff/backend-sdk';

const endpoint = process.env[BROKER_ENV.endpoint];
const server = await serveDaemon({
  endpoint,
  identity: await currentDaemonProcess(endpoint),
  payloadProtocols: [0xf001],
  maxInFlightPerConnection: 1024,
  onRequest: (frame) => frame.payload,
});
const attachment = new BrokerAttachment({
  server,
  serviceName: process.env[BROKER_ENV.service] ?? 'echo',
});
attachment.start();
process.on('SIGTERM', () => {
  attachment.close();
  void server.close({ deadlineMs: 200 }).then(() => process.exit(0));
});
