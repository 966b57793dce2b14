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
    if (this.inFlight === 0) closeWhenFlushed(this.socket);
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
    safeWrite(
      this.socket,
      encodeFramed(responseFrame(frame, { payload: AdminReply.encode(reply) })),
    );
    if (this.peerEnded && this.inFlight === 0) closeWhenFlushed(this.socket);
  }
}
