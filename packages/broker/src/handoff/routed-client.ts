// One client the router has routed to a backend: its socket, what every
// frame to it carries (the ticket) and what the broker has told it so far.
// The router decides where it goes; offer.ts and fallback.ts take it there.
import type { FdSocket } from '@handoff/fdpass';
import type { Frame } from '@handoff/protocol';
import type { ServiceDefinition } from '../config/definition.js';
import type { RouterContext } from '../router-context.js';
import { traceContext } from '../trace-context.js';
import type { HandoffTicket } from './wire.js';

export interface RoutedClient {
  readonly socket: FdSocket;
  readonly serviceName: string;
  /** What it was routed to: a second offer acquires a backend for it again. */
  readonly definition: ServiceDefinition;
  /** Bytes the client sent past its Hello: they travel with the offer. */
  readonly rest: Buffer;
  readonly ticket: HandoffTicket;
  /** Our Negotiated is in its socket already, so a relay goes alone. */
  negotiatedSent: boolean;
}

export interface RouteFacts {
  socket: FdSocket;
  /** The client's Hello frame. */
  frame: Frame;
  serviceName: string;
  definition: ServiceDefinition;
  rest: Buffer;
  canHandoff: boolean;
}

/** The token of a client that will not be handed off: shared, as it has no bytes to change. */
const NO_TOKEN = new Uint8Array(0);

/** Numbers the connection and, when it may be handed off, draws its token. */
export function routedClient(facts: RouteFacts, ctx: RouterContext): RoutedClient {
  const { frame } = facts;
  const trace = traceContext(frame);
  const connectionId = ctx.nextConnectionId();
  return {
    socket: facts.socket,
    serviceName: facts.serviceName,
    definition: facts.definition,
    rest: facts.rest,
    ticket: {
      correlation: {
        payloadProtocol: frame.payloadProtocol,
        requestId: frame.requestId,
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
      },
      trace,
      connectionId,
      canHandoff: facts.canHandoff,
      token: facts.canHandoff ? ctx.tokens.next() : NO_TOKEN,
    },
    negotiatedSent: false,
  };
}

/**
 * The fields every log line about `client` carries. Made per line, not per
 * client: most routed Hellos log nothing at the default level.
 */
export function logFieldsOf(client: RoutedClient): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    service: client.serviceName,
    connection_id: String(client.ticket.connectionId),
  };
  const { traceparent } = client.ticket.trace;
  if (traceparent) fields.traceparent = traceparent;
  return fields;
}
