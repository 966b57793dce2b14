// Stopping a daemon nobody has been routed to for its definition's
// idleTimeoutSecs: one timer per backend, re-armed by each routed client,
// unref'd so it never keeps the broker alive on its own.
import type { Backend } from '../backend.js';

export class IdleTimers {
  private readonly timers = new Map<Backend, { timer: NodeJS.Timeout; idleMs: number }>();

  constructor(private readonly stop: (backend: Backend) => void) {}

  /** (Re)starts `backend`'s countdown; a definition without idleTimeoutSecs never idles out. */
  arm(backend: Backend): void {
    const idleMs = (backend.definition.idleTimeoutSecs ?? 0) * 1000;
    if (idleMs <= 0) return;
    const running = this.timers.get(backend);
    // Every routed Hello re-arms: the same timer is moved, not replaced,
    // unless the definition's timeout changed since it was armed.
    if (running !== undefined && running.idleMs === idleMs) {
      running.timer.refresh();
      return;
    }
    this.clear(backend);
    const timer = setTimeout(() => this.stop(backend), idleMs);
    timer.unref();
    this.timers.set(backend, { timer, idleMs });
  }

  clear(backend: Backend): void {
    const running = this.timers.get(backend);
    if (running) clearTimeout(running.timer);
    this.timers.delete(backend);
  }

  clearAll(): void {
    for (const backend of [...this.timers.keys()]) this.clear(backend);
  }
}
