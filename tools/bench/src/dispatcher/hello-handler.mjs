// The handler both servers run: a node:http hello world. Shared so that
// ours and node:cluster differ only in how a connection reaches a worker.
import { createServer } from 'node:http';

export const HELLO = 'hello world\n';

export function createHelloServer() {
  return createServer((_req, res) => {
    res.end(HELLO);
  });
}
