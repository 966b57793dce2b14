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
import { closeWhenFlushed, safeWrite } from './client-socket.js';
import type { RouterContext } from './router-context.js';

/** Admin frames on a broker connection: answered in order, until the client closes. */
export class AdminSession {
  private inFlight = 0;
  private peerEnded = false;
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
    this.socket.pause();
    this.ended();
  }

  answer(frames: Frame[]): void {
    for (const frame of frames) void this.answerOne(frame);
  }

  ended(): void {
    this.peerEnded = true;
    // Answers still queued are written first, and close the socket after them.
    if (this.inFlight === 0 && this.replies.length === 0) closeWhenFlushed(this.socket);
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
   * per batch, not one per request, and wakes its reader once.
   */
  private queueReply(bytes: Uint8Array): void {
    if (this.replies.length === 0) process.nextTick(this.flushReplies);
    this.replies.push(bytes);
  }

  private readonly flushReplies = (): void => {
    const replies = this.replies;
    this.replies = [];
    if (replies.length > 0 && !this.socket.closed)
      safeWrite(this.socket, replies.length === 1 ? replies[0]! : Buffer.concat(replies));
    if (this.peerEnded && this.inFlight === 0) closeWhenFlushed(this.socket);
  };
}
