// The demo daemon's line wire, as the suite's clients speak it: one command
// per line, one answer line each. It works on a handed-off connection and
// on the daemon's own socket alike, so every case uses it.
import type { Socket } from 'node:net';

/** The request every client sends: a GET of a key that is set once per case. */
export const GET_LINE = 'GET bench\n';

/** True for the two good answers to GET_LINE. */
export const goodAnswer = (line: string): boolean =>
  line.startsWith('VALUE ') || line === 'NOT_FOUND';

export class LineReadError extends Error {
  override readonly name = 'LineReadError';
  constructor(
    readonly code: 'CLOSED' | 'TIMEOUT' | 'SOCKET',
    message: string,
    /** The errno name of a SOCKET error (ECONNRESET, EPIPE, …). */
    readonly errno?: string,
  ) {
    super(message);
  }
}

/**
 * Reads one answer line from `socket` (flowing it), leaving any bytes past
 * the line in `carry`. Rejects when the socket ends, fails, or `timeoutMs`
 * passes first.
 */
export function readLine(
  socket: Socket,
  timeoutMs: number,
  carry: { rest: string },
): Promise<string> {
  const cut = () => {
    const at = carry.rest.indexOf('\n');
    if (at < 0) return null;
    const line = carry.rest.slice(0, at).replace(/\r$/, '');
    carry.rest = carry.rest.slice(at + 1);
    return line;
  };
  const ready = cut();
  if (ready !== null) return Promise.resolve(ready);
  return new Promise((resolve, reject) => {
    const done = (error: LineReadError | null, line?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if (error) reject(error);
      else resolve(line!);
    };
    const onData = (chunk: Buffer) => {
      carry.rest += chunk.toString('latin1');
      const line = cut();
      if (line !== null) done(null, line);
    };
    const onEnd = () => done(new LineReadError('CLOSED', 'the connection ended before an answer'));
    const onError = (error: NodeJS.ErrnoException) =>
      done(new LineReadError('SOCKET', `socket error ${error.code ?? error.message}`, error.code));
    const timer = setTimeout(
      () => done(new LineReadError('TIMEOUT', `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    socket.resume();
  });
}
