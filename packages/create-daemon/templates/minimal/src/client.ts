// Asking the daemon, the way any client does: connect to the broker by
// service name (the broker starts the daemon if it is not running and hands
// this connection over to it), then send a framed request and read the answer.
import { FrameClient } from '@handoff/backend-sdk';
import { connectService, type ServiceConnection } from '@handoff/broker';
import { PAYLOAD_PROTOCOL, SERVICE_NAME, SERVICE_VERSION } from './service.js';

export interface AskOptions {
  /** The broker's socket (default: the per-user one, see defaultBrokerSocketPath). */
  brokerPath?: string | undefined;
  /** For the whole connect, a daemon start included (default 30 s). */
  timeoutMs?: number;
}

/** Sends `text` to the daemon and resolves with its answer, and how the broker connected us. */
export async function ask(
  text: string,
  options: AskOptions = {},
): Promise<{ answer: string; route: ServiceConnection['route'] }> {
  const { socket, route } = await connectService(SERVICE_NAME, {
    version: SERVICE_VERSION,
    timeoutMs: options.timeoutMs ?? 30_000,
    ...(options.brokerPath === undefined ? {} : { brokerPath: options.brokerPath }),
  });
  const client = new FrameClient(socket);
  try {
    const reply = await client.request(PAYLOAD_PROTOCOL.id, new TextEncoder().encode(text), {
      timeoutMs: 10_000,
    });
    return { answer: new TextDecoder().decode(reply.payload), route };
  } finally {
    client.close();
  }
}
