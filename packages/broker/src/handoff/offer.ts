// Offering a routed client to its daemon over the control channel — with our
// Negotiated sent first, or handed to the daemon as the client's prelude —
// and once more to a live backend when the first offer found no taker.
// What the client hears after the last offer is fallback.ts's.
import type { Backend } from '../backend-registry.js';
import { flushed, safeWrite } from '../client-socket.js';
import { type RouterContext, secondsSince } from '../router-context.js';
import { letGo, type OfferOutcome } from './ack.js';
import { logFieldsOf, type RoutedClient } from './routed-client.js';
import { negotiatedFrame, relayFrame } from './wire.js';

/** One offer made: to whom, whether that backend writes client preludes, and its verdict. */
export interface OfferAttempt {
  target: Backend;
  prelude: boolean;
  outcome: OfferOutcome;
}

/**
 * Offers the client to `backend` (whose channel is open) and, if that
 * backend surely did not adopt it, once more to a live backend for the same
 * definition. Records the handoff's outcome and duration.
 */
export async function offerHandoff(
  client: RoutedClient,
  backend: Backend,
  ctx: RouterContext,
): Promise<OfferAttempt> {
  const started = process.hrtime.bigint();
  let attempt = await offerTo(client, backend, ctx);
  if (
    !attempt.outcome.accepted &&
    !letGo(attempt.outcome, attempt.prelude) &&
    !client.socket.closed
  ) {
    // The backend refused, or the fd never reached it (its channel broke):
    // a client sent to its socket now could land in a dying listener. Get a
    // live backend for the same service — respawned if need be, at the same
    // endpoint — and offer once more before falling back.
    attempt = (await secondOffer(client, ctx)) ?? attempt;
  }
  ctx.observeHandoff(attempt.outcome.accepted ? 'accepted' : 'fallback', secondsSince(started));
  return attempt;
}

async function secondOffer(client: RoutedClient, ctx: RouterContext): Promise<OfferAttempt | null> {
  try {
    const next = await ctx.acquire(client.definition);
    if (next.channel && !next.channel.closed && !client.socket.closed)
      return await offerTo(client, next, ctx);
  } catch (error) {
    ctx.log(
      'warn',
      { ...logFieldsOf(client), err: (error as Error).message },
      'no backend for a second offer',
    );
  }
  return null;
}

/**
 * A backend that writes client preludes sends the client our Negotiated
 * and the accepted relay itself, ahead of its answers to the bytes that
 * came with the Hello: the client hears one write, from the daemon. Any
 * other backend gets the reference sequence — Negotiated from us now, the
 * relay from us after its ack.
 */
async function offerTo(
  client: RoutedClient,
  target: Backend,
  ctx: RouterContext,
): Promise<OfferAttempt> {
  const channel = target.channel!;
  const prelude = channel.writesPrelude;
  const { socket, ticket } = client;
  let clientPrelude: Uint8Array = new Uint8Array(0);
  if (prelude) {
    const relay = relayFrame(ticket, true, '');
    clientPrelude = client.negotiatedSent
      ? relay
      : Buffer.concat([negotiatedFrame(ticket, target), relay]);
  } else if (!client.negotiatedSent) {
    safeWrite(socket, negotiatedFrame(ticket, target));
    client.negotiatedSent = true;
    // The reply must be in the client's socket before the daemon can
    // write to it; on a fresh connection it always is, but make sure.
    if (!(await flushed(socket)))
      return {
        target,
        prelude,
        outcome: { accepted: false, reason: 'client went away', fate: 'not-sent' },
      };
  }
  const outcome = await channel.offer(
    socket.fd,
    {
      token: ticket.token,
      serviceName: client.serviceName,
      correlationId: ticket.connectionId,
      bufferedClientBytes: client.rest,
      clientPrelude,
      traceparent: ticket.trace.traceparent,
      tracestate: ticket.trace.tracestate,
    },
    ctx.handoffDeadlineMs,
  );
  return { target, prelude, outcome };
}
