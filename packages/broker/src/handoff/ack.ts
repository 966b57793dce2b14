// The daemon's answer to an offer: a HandoffAck read into an OfferOutcome,
// and what an outcome still allows. Matching acks to offers is the control
// channel's; what the client hears next is fallback.ts's.
import { HandoffAck } from '@handoff/protocol';

/**
 * The backend's verdict on one offer. When it was not accepted, `fate` says
 * what the broker may still do with the client: 'not-sent' and 'refused'
 * mean the backend never adopted it (offer elsewhere, or tell the client to
 * reconnect); 'unknown' (no ack: the backend died or stalled after the fd
 * went out) means it may have adopted it — and, given a client prelude,
 * may already have told the client so.
 */
export type OfferOutcome =
  | { accepted: true; preludeWritten: boolean }
  | { accepted: false; reason: string; fate: 'not-sent' | 'refused' | 'unknown' };

/**
 * Given a prelude, a backend that took the fd and never answered (it died
 * or stalled) may have adopted the client and told it so: a relay or a
 * second offer from us could land in the middle of its session. Let go —
 * if nobody took the client it sees the connection close before any
 * reply, and asks the broker again (connectService does), which respawns.
 */
export function letGo(outcome: OfferOutcome, prelude: boolean): boolean {
  return !outcome.accepted && outcome.fate === 'unknown' && prelude;
}

/** Decodes a HandoffAck payload (throws if it does not decode). */
export function readAck(payload: Uint8Array): { correlationId: bigint; outcome: OfferOutcome } {
  const ack = HandoffAck.decode(payload);
  return {
    correlationId: ack.correlationId,
    outcome: ack.accepted
      ? { accepted: true, preludeWritten: ack.preludeWritten }
      : { accepted: false, reason: ack.errorDetail || 'refused', fate: 'refused' },
  };
}
