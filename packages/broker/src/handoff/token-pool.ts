// Handoff tokens: the random value a client's Negotiated and the daemon's
// offer share, so the daemon can tell its client from any other. One pool per
// broker (it sits in the RouterContext), not per process; using them is offer.ts's.
import { randomFillSync } from 'node:crypto';
import { HANDOFF_TOKEN_BYTES } from '@handoff/protocol';

/** How many tokens one refill of the pool yields. */
const TOKENS_PER_REFILL = 256;

/**
 * Handoff tokens from a pool the CSPRNG refills 256 tokens at a time: one
 * getrandom per 256 handoffs instead of one each. Each token is copied out,
 * so a token never aliases the pool that is refilled under it.
 */
export class HandoffTokenPool {
  private readonly pool = new Uint8Array(HANDOFF_TOKEN_BYTES * TOKENS_PER_REFILL);
  private offset = this.pool.length;

  next(): Uint8Array {
    if (this.offset === this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const token = this.pool.slice(this.offset, this.offset + HANDOFF_TOKEN_BYTES);
    this.offset += HANDOFF_TOKEN_BYTES;
    return token;
  }
}
