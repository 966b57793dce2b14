// Ending a connection we are giving up on: what was written to it still
// goes out, then the socket is destroyed as soon as our side is finished —
// not when the client closes its side, which a failing or hostile client
// may never do. One owner for this, used wherever a connection fails alone.
import type { Socket } from 'node:net';

export function endAfterFlush(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end();
  if (socket.writableFinished) socket.destroy();
  else socket.once('finish', () => socket.destroy());
}
