// One legacy line-wire connection: the I/O half of line-protocol.ts. It
// reads lines (the bytes the mux already read come first), answers each in
// order, stops reading while the client is not reading its answers, and on
// drain() finishes what it has and ends the connection.
import type { Socket } from 'node:net';
import type { KvCommand, KvReply } from './kv-service.js';
import {
  formatErrorLine,
  formatReplyLine,
  LineProtocolError,
  LineSplitter,
  parseCommandLine,
} from './line-protocol.js';

export interface LineConnectionOptions {
  maxLineBytes: number;
  /** Runs a command at once: the line wire has no waiting GET. */
  execute(command: KvCommand): KvReply;
  /** Told of each line that was not a command, the over-long one included. */
  onProtocolError?(error: LineProtocolError): void;
}

export class LineConnection {
  /** Resolves once the socket has closed, however it closed. */
  readonly closed: Promise<void>;
  private readonly splitter: LineSplitter;
  private draining = false;

  constructor(
    private readonly socket: Socket,
    alreadyRead: Uint8Array,
    private readonly options: LineConnectionOptions,
  ) {
    this.splitter = new LineSplitter(options.maxLineBytes);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    // A reset by the client surfaces as 'error' and then 'close': nothing to do but let it close.
    socket.on('error', () => {});
    socket.on('data', this.onData);
    // Reading pauses while the client is not reading our answers (below).
    socket.on('drain', () => {
      if (!this.draining) socket.resume();
    });
    if (alreadyRead.length > 0) this.onData(alreadyRead);
    if (!this.draining && !socket.destroyed && !socket.writableNeedDrain) socket.resume();
  }

  /** Answers no more lines; closes the connection once the answers already queued are written. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.socket.off('data', this.onData);
    this.socket.pause();
    // Close once flushed rather than wait for the client to end its side: on
    // a Unix socket, written bytes already sit in the peer's receive queue
    // and survive our close.
    this.socket.end(() => this.socket.destroy());
  }

  /** Closes the connection now, whatever is left unwritten. */
  destroy(): void {
    this.socket.destroy();
  }

  private readonly onData = (chunk: Uint8Array): void => {
    const { lines, error } = this.splitter.push(chunk);
    const answers: Uint8Array[] = [];
    for (const line of lines) {
      try {
        const command = parseCommandLine(line);
        if (command) answers.push(formatReplyLine(this.options.execute(command)));
      } catch (failure) {
        if (!(failure instanceof LineProtocolError)) throw failure;
        this.options.onProtocolError?.(failure);
        answers.push(formatErrorLine(failure.code, failure.message));
      }
    }
    if (error) {
      // The rest of an over-long line cannot be told from the next command:
      // say why, and end the connection.
      this.options.onProtocolError?.(error);
      answers.push(formatErrorLine(error.code, error.message));
      this.write(answers);
      this.drain();
      return;
    }
    // All the answers to one chunk leave in one write.
    if (!this.write(answers)) this.socket.pause();
  };

  /** False when the socket's buffer is full (the client is not reading). */
  private write(answers: Uint8Array[]): boolean {
    if (answers.length === 0 || this.socket.destroyed || this.draining) return true;
    return this.socket.write(answers.length === 1 ? answers[0]! : Buffer.concat(answers));
  }
}
