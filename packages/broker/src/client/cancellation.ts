// How connectService tells its sockets and back-off waits to stop (deadline
// passed, caller aborted): a minimal stand-in for AbortController. Its own
// file because a real AbortController plus one listener costs ~6.6 µs per
// call (EventTarget), about as much as the rest of the client's JS together.
// The caller's own AbortSignal is still honoured (connect-service.ts links it).

/** What Conversation and pause() need of a signal; AbortSignal has this shape too. */
export interface Cancellable {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A one-shot cancellation: `cancel(reason)` runs every listener once, later calls do nothing. */
export class CallCancellation implements Cancellable {
  aborted = false;
  reason: Error | undefined = undefined;
  /** Rarely more than one at a time (the socket in use, or a back-off wait). */
  private listeners: Array<() => void> = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const at = this.listeners.lastIndexOf(listener);
    if (at < 0) return;
    // Usually the one added last: a pop, not a splice.
    if (at === this.listeners.length - 1) this.listeners.pop();
    else this.listeners.splice(at, 1);
  }

  cancel(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener();
  }
}
