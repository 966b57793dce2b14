// A TCP port on 127.0.0.1 free a moment ago, for a dispatcher-suite server
// that binds its own listener (a child process cannot be handed port 0 and
// tell us what it got before it is ready).
import { once } from 'node:events';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  await once(s, 'close');
  return port;
}
