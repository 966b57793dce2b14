// A dispatcher worker for the benchmark: every connection the master sends
// goes to the shared hello-world http.Server, set up as net.Server sets up
// an http.Server's own connections (allowHalfOpen, TCP_NODELAY), so both
// servers put the same bytes on the wire the same way. The masters here set
// TCP_NODELAY on their listener, so setNoDelay(true) finds it set already
// and makes no system call; node:cluster's workers make one per connection.
import { serveDispatched } from '@handoff/backend-sdk';
import { createHelloServer } from './hello-handler.mjs';

const server = createHelloServer();
const worker = await serveDispatched(
  ({ socket }) => {
    socket.setNoDelay(true);
    server.emit('connection', socket);
  },
  { allowHalfOpen: true },
);
worker.on('stop', () => server.closeIdleConnections());
