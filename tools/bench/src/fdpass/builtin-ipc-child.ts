// Receiver for the Node built-in baseline: takes handles sent by the parent
// with child.send(msg, socket), destroys each (closing the fd, the same work
// as the other receivers) and reports progress and the round's count.
import type { Socket } from 'node:net';

export interface BuiltinMessage {
  last: boolean;
}

export interface BuiltinReply {
  kind: 'ready' | 'progress' | 'done';
  count: number;
}

/** Progress reports let the parent cap a burst that would run too long. */
export const PROGRESS_EVERY = 1000;

function reply(message: BuiltinReply): void {
  process.send?.(message);
}

let count = 0;
process.on('message', (message: BuiltinMessage, handle?: Socket) => {
  if (handle !== undefined) {
    handle.destroy();
    count++;
    if (count % PROGRESS_EVERY === 0) reply({ kind: 'progress', count });
  }
  if (message.last) {
    reply({ kind: 'done', count });
    count = 0;
  }
});
reply({ kind: 'ready', count: 0 });
