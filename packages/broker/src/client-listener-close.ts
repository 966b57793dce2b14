// Closing the broker's client listener without cutting off the clients in
// its backlog: the file goes first, then the server accepts until a loop
// turn brings nobody new (each of them refused SHUTTING_DOWN by the router).
// A listener shared with a service manager is left to its backlog instead.
import type { FdServer } from '@handoff/fdpass';
import { type SocketFile, unlinkOwnSocket } from './upgrade/listeners.js';

/** Bounds the backlog drain; each turn accepts up to the server's accept budget. */
const MAX_BACKLOG_TURNS = 64;

/**
 * Closing a listening socket resets the connections still in its backlog
 * (the clients see ECONNRESET mid-Hello). So the file goes first — a new
 * connect fails at once with ENOENT — and the server keeps accepting until
 * a whole loop turn brings nothing.
 */
export async function closeClientListener(
  server: FdServer,
  how: {
    /** Shared with whoever handed it over (systemd keeps its own fd): its backlog waits for the next broker. */
    shared: boolean;
    socketPath: string;
    /** The file we bound, removed only while it is still that file. */
    socketFile: SocketFile | null;
    /** Connections accepted so far, to see a turn that brought nobody. */
    accepted: () => number;
  },
): Promise<void> {
  if (how.shared) {
    server.close();
    return;
  }
  unlinkOwnSocket(how.socketPath, how.socketFile);
  for (let turns = 0; turns < MAX_BACKLOG_TURNS; turns++) {
    const before = how.accepted();
    await nextTurn();
    if (how.accepted() === before) break;
  }
  server.close();
}

/** Resolves after at least one poll phase: whatever was readable has been handled. */
export async function nextTurn(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
