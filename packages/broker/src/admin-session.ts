// An admin session on a broker client connection: the router hands it the
// connection once the first frame is an admin frame, and it answers each
// AdminRequest in order until the client closes. What the answers say is admin.ts's.
import type { FdSocket } from '@handoff/fdpass';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminReply,
  AdminRequest,
  encodeFramed,
  type Frame,
  type FrameDecoder,
  FrameKind,
  responseFrame,
} from '@handoff/protocol';
import { closeWhenFlushed } from './client-socket.js';
import type { RouterContext } from './router-context.js';

/**
 * Answers started at once, at most; the next ones start once these are
 * written. Each answer is small (an AdminReply of a few KiB at most, a DUMP
 * aside), so what a session holds stays bounded, and a report of thousands
 * of cached sessions still leaves in a few dozen writes.
 */
export const ADMIN_ANSWERS_PER_ROUND = 128;

/**
 * Admin frames on a broker connection: answered in order, until the client
 * closes. Memory per session is bounded whatever the client does (DESIGN
 * §6): a client that pipelines requests and never reads its answers gets
 * at most one round of answers queued beyond the socket's high-water mark;
 * then the session stops reading until the socket drains.
 */
export class AdminSession {
  private inFlight = 0;
  private peerEnded = false;
  private stopped = false;
  /** Reading stopped for backpressure (not for good, as stop() does). */
  private held = false;
  /** The socket's queue passed its high-water mark: no new answer until 'drain'. */
  private draining = false;
  /**
   * Frames received and not started yet, from waitingAt on: at most one
   * read's worth, as reading stops meanwhile.
   */
  private waiting: Frame[] = [];
  private waitingAt = 0;
  /** Answers waiting for the end of this tick (see queueReply). */
  private replies: Uint8Array[] = [];
  constructor(
    private readonly socket: FdSocket,
    private readonly decoder: FrameDecoder,
    private readonly ctx: Pick<RouterContext, 'admin'>,
  ) {}

  push(data: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(data);
    } catch {
      this.stop();
      return;
    }
    this.answer(frames);
    if (this.decoder.error) this.stop();
  }

  /** Reads no more; closes once the answers already owed are written. */
  stop(): void {
    this.stopped = true;
    this.socket.pause();
    this.ended();
  }

  answer(frames: Frame[]): void {
    for (const frame of frames) this.waiting.push(frame);
    this.pump();
  }

  ended(): void {
    this.peerEnded = true;
    this.closeIfDone();
  }

  /** Starts what the bounds allow, and reads again once nothing waits. */
  private pump(): void {
    while (
      this.waitingAt < this.waiting.length &&
      !this.draining &&
      this.inFlight < ADMIN_ANSWERS_PER_ROUND &&
      !this.socket.closed
    )
      void this.answerOne(this.waiting[this.waitingAt++]!);
    if (this.waitingAt === this.waiting.length && this.waitingAt > 0) {
      this.waiting = [];
      this.waitingAt = 0;
    }
    if (this.waiting.length > 0 && !this.held && !this.stopped) {
      this.held = true;
      this.socket.pause();
    } else if (this.waiting.length === 0 && this.held) {
      this.held = false;
      if (!this.stopped) this.socket.resume();
    }
  }

  /** Once the client ended and every answer owed is written: close. */
  private closeIfDone(): void {
    if (
      this.peerEnded &&
      this.inFlight === 0 &&
      this.replies.length === 0 &&
      this.waiting.length === 0
    )
      closeWhenFlushed(this.socket);
  }

  private async answerOne(frame: Frame): Promise<void> {
    if (frame.payloadProtocol !== ADMIN_PAYLOAD_PROTOCOL || frame.kind !== FrameKind.REQUEST) {
      this.socket.close();
      return;
    }
    let request: AdminRequest;
    try {
      request = AdminRequest.decode(frame.payload);
    } catch {
      this.socket.close();
      return;
    }
    this.inFlight++;
    const reply = await this.ctx.admin(request);
    this.inFlight--;
    if (this.socket.closed) return;
    this.queueReply(encodeFramed(responseFrame(frame, { payload: AdminReply.encode(reply) })));
  }

  /**
   * Answers made in one turn of the event loop leave in one write: a
   * client that pipelines many requests in one write (an endpoint-cache
   * report holds one per session, thousands at a time) costs one sendmsg
   * per round, not one per request, and wakes its reader once.
   */
  private queueReply(bytes: Uint8Array): void {
    if (this.replies.length === 0) process.nextTick(this.flushReplies);
    this.replies.push(bytes);
  }

  private readonly flushReplies = (): void => {
    const replies = this.replies;
    this.replies = [];
    if (replies.length > 0 && !this.socket.closed && !this.write(replies)) {
      // Past the high-water mark: the client is not reading. No new answer
      // until what is queued has gone out.
      this.draining = true;
      this.socket.once('drain', this.onDrain);
    }
    this.pump();
    this.closeIfDone();
  };

  private readonly onDrain = (): void => {
    this.draining = false;
    this.pump();
    this.closeIfDone();
  };

  /** socket.write()'s verdict (false: over the high-water mark); a refused write closes it. */
  private write(replies: Uint8Array[]): boolean {
    try {
      return this.socket.write(replies.length === 1 ? replies[0]! : Buffer.concat(replies));
    } catch {
      this.socket.close();
      return true;
    }
  }
}
