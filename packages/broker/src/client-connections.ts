// The client connections a broker holds open while it routes them: counted
// for the connections_open gauge, waited for when the broker drains, cut
// when the drain is over. One owner, so the count, the drain and the cut
// never disagree about who is still connected.
import { SlotSet } from '@handoff/backend-sdk';
import type { FdSocket } from '@handoff/fdpass';

export class ClientConnections {
  /** A SlotSet, not a Set: clients churn, and a Set would slow the GC (see @handoff/backend-sdk). */
  private readonly open = new SlotSet<FdSocket>();
  private onEmpty: (() => void) | null = null;

  constructor(private readonly onCount: (open: number) => void) {}

  get size(): number {
    return this.open.size;
  }

  /** Holds `socket` until it closes. */
  add(socket: FdSocket): void {
    const slot = this.open.add(socket);
    this.onCount(this.open.size);
    // 'close' comes once: on() spares the wrapper once() makes per client.
    socket.on('close', () => {
      this.open.delete(slot, socket);
      this.onCount(this.open.size);
      if (this.open.size === 0) this.onEmpty?.();
    });
  }

  /** Resolves when no client connection is open, or at the deadline. */
  drain(deadlineMs: number): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.onEmpty = null;
        resolve();
      };
      const timer = setTimeout(done, deadlineMs);
      this.onEmpty = done;
    });
  }

  /** Cuts every connection still open. */
  closeAll(): void {
    for (const socket of this.open) socket.close();
  }
}
