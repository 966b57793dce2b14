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
  /**
   * The listeners, oldest first. Rarely more than one at a time (the socket
   * in use, or a back-off wait): that one is kept in a field, and an array
   * (with its backing store, some 150 bytes) is made only for a second.
   */
  private only: (() => void) | null = null;
  private more: Array<() => void> | null = null;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    if (this.more !== null) this.more.push(listener);
    else if (this.only === null) this.only = listener;
    else {
      this.more = [this.only, listener];
      this.only = null;
    }
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.only === listener) {
      this.only = null;
      return;
    }
    const more = this.more;
    if (more === null) return;
    const at = more.lastIndexOf(listener);
    if (at < 0) return;
    // Usually the one added last: a pop, not a splice.
    if (at === more.length - 1) more.pop();
    else more.splice(at, 1);
  }

  cancel(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const only = this.only;
    const more = this.more;
    this.only = null;
    this.more = null;
    if (only !== null) only();
    if (more !== null) for (const listener of more) listener();
  }
}
