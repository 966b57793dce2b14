// One running request and the context its handler sees: the abort signal,
// made only when asked for, and sendEvent. Encoding and writing the event
// stay with the connection (connection.ts) that owns the socket.
import type { PeerCredentials } from '@handoff/fdpass';
import type { Frame } from '@handoff/protocol';
import type { RequestContext } from './options.js';

/** Where a request's events go: its connection. */
export interface EventSink {
  sendEvent(request: InFlight, payload: unknown): void;
}

/**
 * One running request. Its AbortController is made only if the handler
 * asks for `signal` (most never do, and one costs more than echoing a
 * small frame); a cancel that comes first is remembered.
 */
export class InFlight implements RequestContext {
  #controller: AbortController | null = null;
  #abortReason: unknown = undefined;
  readonly #connection: EventSink;
  aborted = false;

  constructor(
    connection: EventSink,
    readonly frame: Frame,
    readonly connectionId: number,
    readonly peer: PeerCredentials,
  ) {
    this.#connection = connection;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  sendEvent(payload: Uint8Array): void {
    if (!this.aborted) this.#connection.sendEvent(this, payload);
  }
}
