// Reading a TCP socket option from outside Node: Node has no getsockopt, so
// a python3 process inherits the fd (as its fd 3) and asks the kernel. A
// test that a connection has TCP_NODELAY, or that a call made no setsockopt,
// then rests on the kernel's answer rather than on Node's own bookkeeping.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

const ASK = [
  'import socket',
  's = socket.socket(fileno=3)',
  'print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))',
  's.detach()',
].join('\n');

/** Whether the TCP socket `fd` (of this process) has TCP_NODELAY set, as the kernel says. */
export async function tcpNoDelay(fd: number): Promise<boolean> {
  const child = spawn('python3', ['-c', ASK], { stdio: ['ignore', 'pipe', 'pipe', fd] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`python3 could not read TCP_NODELAY of fd ${fd}: ${err.trim()}`);
  const value = out.trim();
  if (!/^\d+$/.test(value)) throw new Error(`python3 answered ${JSON.stringify(value)}`);
  return Number(value) !== 0;
}
