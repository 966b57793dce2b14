// startDaemon: a daemon on one Unix socket that answers framed requests of
// its own payload protocol and identity probes (serveDaemon does both), and
// that attaches to a broker so the broker can hand client connections over.
// Process concerns (environment, signals, exit codes) are daemon-main.ts's.
import {
  BrokerAttachment,
  type CurrentDaemonOptions,
  currentDaemonProcess,
  type DaemonServer,
  removeIdentitySidecar,
  type ServerConnectionError,
  serveDaemon,
  writeIdentitySidecar,
} from '@handoff/backend-sdk';
import { answer, RequestError } from './handler.js';
import { PAYLOAD_PROTOCOL, SERVICE_NAME } from './service.js';

export interface DaemonOptions {
  /** The socket to serve; its directory must be private (0700, ours). */
  endpoint: string;
  /** A broker's control socket: attach, so it can hand clients over. Omit to serve alone. */
  brokerControlPath?: string | undefined;
  /** The name to register with the broker (default SERVICE_NAME). */
  serviceName?: string | undefined;
  /** What the identity probes answer with is built from these (tests pass entryScript: null). */
  identity?: Pick<CurrentDaemonOptions, 'entryScript' | 'hashCache'>;
  /** One line per event worth knowing; default: silent. */
  log?: (message: string) => void;
}

export interface Daemon {
  readonly endpoint: string;
  /** Stops attaching, stops accepting, lets running requests finish (up to 5 s). */
  close(): Promise<void>;
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const log = options.log ?? (() => {});
  const { endpoint } = options;
  const identity = await currentDaemonProcess(endpoint, options.identity);
  const server: DaemonServer = await serveDaemon({
    endpoint,
    identity,
    payloadProtocols: [PAYLOAD_PROTOCOL],
    onRequest: (frame) => {
      try {
        return answer(frame.payload);
      } catch (error) {
        // A bad request costs only its own connection (serveDaemon ends it).
        if (error instanceof RequestError) log(`refused a request: ${error.message}`);
        throw error;
      }
    },
  });
  server.on('connectionError', (error: ServerConnectionError) =>
    log(`connection ${error.connectionId}: ${error.code}: ${error.message}`),
  );
  // A broker that restarts finds this daemon again through the sidecar.
  const sidecar = `${endpoint}.identity.json`;
  await writeIdentitySidecar(sidecar, identity);
  let attachment: BrokerAttachment | undefined;
  if (options.brokerControlPath) {
    attachment = new BrokerAttachment({
      controlPath: options.brokerControlPath,
      server,
      serviceName: options.serviceName ?? SERVICE_NAME,
    });
    attachment.on('attached', () => log('attached to the broker'));
    attachment.on('detached', () => log('the broker went away; serving on, reattaching'));
    attachment.start();
  }
  log(`listening on ${endpoint} (payload protocol 0x${PAYLOAD_PROTOCOL.id.toString(16)})`);
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    close() {
      closing ??= (async () => {
        attachment?.close();
        await removeIdentitySidecar(sidecar);
        await server.close({ deadlineMs: 5000 });
      })();
      return closing;
    },
  };
}
