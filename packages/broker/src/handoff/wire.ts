// The bytes of a handoff: the HandoffOffer a daemon gets with the client's fd,
// and what the client is told — Negotiated, then the relayed HandoffAck.
// Encoding only; when each goes out is offer.ts's and fallback.ts's business.
import {
  type Correlation,
  encodeFramed,
  eventFrame,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  HandoffOffer,
  requestFrame,
  responseFrame,
} from '@handoff/protocol';
import type { TraceContext } from '../trace-context.js';
import { type NegotiatedTarget, negotiatedReply } from './negotiated-reply.js';

export type { NegotiatedTarget } from './negotiated-reply.js';

/** One client offered to a daemon, as BackendChannel.offer sends it. */
export interface Offer {
  token: Uint8Array;
  serviceName: string;
  correlationId: bigint;
  bufferedClientBytes: Uint8Array;
  /**
   * Bytes the backend writes to the client before anything else if it
   * accepts; empty for none. Only for a backend that writesPrelude.
   */
  clientPrelude: Uint8Array;
  /** W3C trace context carried over from the client's Hello ('' when none). */
  traceparent: string;
  tracestate: string;
}

/** The framed HandoffOffer that follows the token (and the fd) on a control channel. */
export function offerFrame(offer: Offer): Uint8Array {
  return encodeFramed(
    requestFrame({
      payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
      requestId: offer.correlationId,
      traceparent: offer.traceparent,
      tracestate: offer.tracestate,
      payload: HandoffOffer.encode({
        handleValue: 0n,
        token: offer.token,
        serviceName: offer.serviceName,
        correlationId: offer.correlationId,
        bufferedClientBytes: offer.bufferedClientBytes,
        clientPrelude: offer.clientPrelude,
      }),
    }),
  );
}

/** What every frame the broker writes to one routed client carries. */
export interface HandoffTicket {
  /** The Hello's frame with its trace context checked: replies answer it. */
  correlation: Correlation;
  trace: TraceContext;
  connectionId: bigint;
  /** The client asked for handle passing and its backend takes handoffs. */
  canHandoff: boolean;
  /** Empty unless canHandoff. */
  token: Uint8Array;
}

/** The client's Negotiated, naming `target`'s endpoint for the reconnect route. */
export function negotiatedFrame(ticket: HandoffTicket, target: NegotiatedTarget): Uint8Array {
  return encodeFramed(
    responseFrame(ticket.correlation, {
      payload: negotiatedReply(target, ticket.canHandoff, ticket.token, ticket.connectionId),
    }),
  );
}

/** The relayed HandoffAck: keep talking on this socket (accepted) or reconnect. */
export function relayFrame(ticket: HandoffTicket, accepted: boolean, reason: string): Uint8Array {
  return encodeFramed(
    eventFrame(
      {
        payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
        requestId: ticket.connectionId,
        ...ticket.trace,
      },
      {
        payload: HandoffAck.encode({
          token: ticket.token,
          accepted,
          errorDetail: reason,
          correlationId: ticket.connectionId,
        }),
      },
    ),
  );
}
