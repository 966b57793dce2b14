// What a routed client hears when the broker is done with it: the reconnect
// route (Negotiated naming backend_pipe), the relayed ack after an offer —
// accepted, or fallen back to reconnect — or nothing, when a daemon may have
// adopted it. Making the offers is offer.ts's.
import type { Backend } from '../backend-registry.js';
import { closeWhenFlushed, safeWrite } from '../client-socket.js';
import type { RouterContext } from '../router-context.js';
import { letGo } from './ack.js';
import type { OfferAttempt } from './offer.js';
import { logFieldsOf, type RoutedClient } from './routed-client.js';
import { negotiatedFrame, relayFrame } from './wire.js';

/** The reconnect route: Negotiated with backend_pipe, then the broker steps out. */
export function sendToReconnect(client: RoutedClient, backend: Backend, ctx: RouterContext): void {
  safeWrite(client.socket, negotiatedFrame(client.ticket, backend));
  ctx.observeHandoff('reconnect', 0);
  ctx.log('debug', () => logFieldsOf(client), 'routed: reconnect');
  closeWhenFlushed(client.socket);
}

/** Ends a handoff after its last offer, and lets go of our copy of the client's fd. */
export function concludeHandoff(
  client: RoutedClient,
  { target, prelude, outcome }: OfferAttempt,
  ctx: RouterContext,
): void {
  const { socket, ticket } = client;
  if (letGo(outcome, prelude)) {
    ctx.log(
      'warn',
      { ...logFieldsOf(client), reason: (outcome as { reason: string }).reason },
      'handoff unacknowledged; client released',
    );
    socket.close();
    return;
  }
  if (outcome.accepted && outcome.preludeWritten) {
    // The daemon told the client everything; our copy of the fd just goes.
    ctx.log('debug', () => logFieldsOf(client), 'routed: handoff');
    socket.close();
    return;
  }
  if (outcome.accepted) ctx.log('debug', () => logFieldsOf(client), 'routed: handoff');
  else
    ctx.log(
      'warn',
      { ...logFieldsOf(client), reason: outcome.reason },
      'handoff fell back to reconnect',
    );
  // The relay tells the client whether to keep talking on this socket (now
  // the daemon's) or to reconnect to backend_pipe. Then our copy goes.
  const reply = relayFrame(ticket, outcome.accepted, outcome.accepted ? '' : outcome.reason);
  safeWrite(
    socket,
    client.negotiatedSent ? reply : Buffer.concat([negotiatedFrame(ticket, target), reply]),
  );
  closeWhenFlushed(socket);
}
