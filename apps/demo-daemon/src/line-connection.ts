// One legacy line-wire connection: the I/O half of line-protocol.ts. It
// answers lines in order, one at a time, and only while its unsent answers
// are under a high-water mark; past it, it stops reading, so the lines not
// yet answered wait in its splitter and the rest in the kernel. On drain()
// it finishes what it has and ends the connection.
import type { Socket } from 'node:net';
import { fdOf } from '@handoff/backend-sdk';
import type { KvCommand, KvReply } from './kv-service.js';
import {
  formatErrorLine,
  formatReplyLine,
  LineProtocolError,
  LineSplitter,
  parseCommandLine,
} from './line-protocol.js';

/** The default high-water mark of a connection's unsent answers, the same as serveDaemon's. */
export const DEFAULT_MAX_QUEUED_ANSWER_BYTES = 1024 * 1024;

/** The ERROR code of a line whose answer could not be produced: the daemon's fault, not the client's. */
export const INTERNAL_ERROR_CODE = 'INTERNAL';

export interface LineConnectionOptions {
  maxLineBytes: number;
  /**
   * No line is answered while this many bytes of answers are unsent
   * (default 1 MiB); one answer may cross it. Values below the socket's
   * writableHighWaterMark act as that, so a 'drain' is always due.
   */
  maxQueuedAnswerBytes?: number;
  /** Runs a command at once: the line wire has no waiting GET. */
  execute(command: KvCommand): KvReply;
  /** Told of each line that was not a command, the over-long one included. */
  onProtocolError?(error: LineProtocolError): void;
  /** Told when a command's answer could not be produced (execute threw); the client got ERROR INTERNAL. */
  onAnswerError?(error: unknown): void;
}

export class LineConnection {
  /** Resolves once the socket has closed, however it closed. */
  readonly closed: Promise<void>;
  private readonly splitter: LineSplitter;
  private readonly maxQueued: number;
  private draining = false;

  constructor(
    private readonly socket: Socket,
    alreadyRead: Uint8Array,
    private readonly options: LineConnectionOptions,
  ) {
    this.splitter = new LineSplitter(options.maxLineBytes);
    this.maxQueued = Math.max(
      options.maxQueuedAnswerBytes ?? DEFAULT_MAX_QUEUED_ANSWER_BYTES,
      socket.writableHighWaterMark,
    );
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    // A reset by the client surfaces as 'error' and then 'close': nothing to do but let it close.
    socket.on('error', () => {});
    socket.on('data', this.onData);
    // Emitted once the unsent answers are all gone, when a write had crossed
    // the socket's own mark — which ours is at least.
    socket.on('drain', () => this.answerLines());
    this.splitter.push(alreadyRead);
    this.answerLines();
  }

  /** Still answering: neither draining, handed over nor closed. */
  get servable(): boolean {
    return !this.draining && !this.socket.destroyed && !this.socket.connecting;
  }

  /** The socket's fd, borrowed (for a deposit: the kernel copies it). */
  get fd(): number {
    return fdOf(this.socket);
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

  /**
   * For a successor daemon (through the broker's fd store): when nothing
   * is half-done — no partial line held, no answer unsent, nothing read and
   * not yet seen — stops reading and returns the socket, which this
   * connection then leaves alone; null (and nothing changes) otherwise. The
   * caller passes its fd on, then destroys the socket: that closes only our
   * copy of the fd, and the client stays connected to whoever holds another.
   */
  handOver(): Socket | null {
    const s = this.socket;
    if (this.draining || s.destroyed || s.connecting) return null;
    if (this.splitter.bufferedBytes > 0 || s.writableLength > 0 || s.readableLength > 0)
      return null;
    s.pause();
    // pause() can leave bytes read in this same turn in the stream's buffer.
    if (s.readableLength > 0) {
      s.resume();
      return null;
    }
    this.draining = true;
    s.off('data', this.onData);
    return s;
  }

  /**
   * For a cut-over to a successor that already holds this socket's fd
   * (line-cutover.ts): stops answering at once and returns the socket with
   * the bytes read and not answered (whole lines held back by the
   * high-water mark, a partial line); null when the connection is draining
   * or closed. The stream may still hold (and go on reading into its buffer)
   * bytes it did not emit, and answers already written may be queued
   * (`socket.writableLength`): the caller waits for the answers, then takes
   * the unread bytes (`takeUnread`) and destroys the socket in one turn.
   * This connection leaves the socket alone from now on.
   */
  release(): { socket: Socket; rest: Uint8Array } | null {
    const s = this.socket;
    if (this.draining || s.destroyed || s.connecting) return null;
    this.draining = true;
    s.off('data', this.onData);
    s.pause();
    return { socket: s, rest: this.splitter.takeRest() };
  }

  /** Closes the connection now, whatever is left unwritten. */
  destroy(): void {
    this.socket.destroy();
  }

  private readonly onData = (chunk: Uint8Array): void => {
    this.splitter.push(chunk);
    this.answerLines();
  };

  /**
   * Answers the lines already read while the unsent answers are under the
   * mark; reads on once every line is answered, and stops reading otherwise
   * until 'drain'.
   */
  private answerLines(): void {
    if (this.draining || this.socket.destroyed) return;
    // The answers to one batch of lines leave in one writev.
    this.socket.cork();
    let allAnswered = false;
    let tooLong: LineProtocolError | undefined;
    while (this.socket.writableLength < this.maxQueued) {
      let line: Uint8Array | null;
      try {
        line = this.splitter.next();
      } catch (error) {
        tooLong = error as LineProtocolError;
        break;
      }
      if (line === null) {
        allAnswered = true;
        break;
      }
      const answer = this.answer(line);
      if (answer) this.socket.write(answer);
    }
    this.socket.uncork();
    if (tooLong) {
      // The rest of an over-long line cannot be told from the next command:
      // say why, and end the connection.
      this.options.onProtocolError?.(tooLong);
      this.socket.write(formatErrorLine(tooLong.code, tooLong.message));
      this.drain();
    } else if (allAnswered) this.socket.resume();
    else this.socket.pause();
  }

  /** A line's answer (null for a blank line); never throws, so one line cannot cost the others. */
  private answer(line: Uint8Array): Uint8Array | null {
    try {
      const command = parseCommandLine(line);
      return command && formatReplyLine(this.options.execute(command));
    } catch (error) {
      if (error instanceof LineProtocolError) {
        this.options.onProtocolError?.(error);
        return formatErrorLine(error.code, error.message);
      }
      this.options.onAnswerError?.(error);
      return formatErrorLine(INTERNAL_ERROR_CODE, 'the daemon could not answer this line');
    }
  }
}
