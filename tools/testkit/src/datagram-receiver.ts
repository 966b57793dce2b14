// A real Unix datagram receiver in another process (Python's socket module,
// not our addon), for tests that send datagrams: fdpass's sendUnixDatagram,
// and the broker's sd_notify messages where the test plays the manager.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const script = new URL('../fixtures/datagram-receiver.py', import.meta.url).pathname;

export interface DatagramReceiver {
  readonly child: ChildProcess;
  /** The datagrams received so far, oldest first; grows as they arrive. */
  readonly received: Buffer[];
  /** Ends the receiver (closing its stdin; SIGKILL if it is still running). */
  close(): void;
}

/** Binds `address` (a path, or `@name` for the abstract namespace); resolves once bound. */
export async function startDatagramReceiver(address: string): Promise<DatagramReceiver> {
  const child = spawn('python3', [script, address], { stdio: ['pipe', 'pipe', 'inherit'] });
  const close = () => {
    child.stdin?.end();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const received: Buffer[] = [];
  const lines = createInterface({ input: child.stdout! });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`datagram receiver exited with ${code}`)));
      child.once('error', reject);
      lines.on('line', (line) => {
        if (line === 'ready') resolve();
        else received.push(Buffer.from(line, 'hex'));
      });
    });
  } catch (error) {
    close();
    throw error;
  }
  return { child, received, close };
}
