// The daemon the tour's broker spawns: serveDaemon answering payload
// protocol 0xF001 with a greeting, attached to the broker for handoffs.
import {
  BROKER_ENV,
  BrokerAttachment,
  currentDaemonProcess,
  serveDaemon,
} from '@handoff/backend-sdk';

const endpoint = process.env[BROKER_ENV.endpoint]!;
const server = await serveDaemon({
  endpoint,
  identity: await currentDaemonProcess(endpoint),
  payloadProtocols: [0xf001],
  onRequest: (frame) =>
    new TextEncoder().encode(
      `hello ${new TextDecoder().decode(frame.payload)}, from daemon pid ${process.pid}`,
    ),
});
const attachment = new BrokerAttachment({
  server,
  serviceName: process.env[BROKER_ENV.service] ?? 'tour',
});
attachment.start();
process.on('SIGTERM', () => {
  attachment.close();
  void server.close({ deadlineMs: 500 }).then(() => process.exit(0));
});
