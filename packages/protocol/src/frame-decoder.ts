// Streaming frame decoder: push chunks as they arrive, get whole frames
// out. Each byte is copied at most once: a frame wholly inside one chunk is
// decoded in place (payload = view into that chunk); a frame spanning
// chunks gets one buffer of exactly its body length, allocated only after
// the header passed the cap. So a 16 MiB frame in 64 KiB chunks costs one
// 16 MiB copy, not one per chunk.
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from './constants.js';
import { FramingError } from './errors.js';
import { Frame } from './frame-codec.js';
import { checkLength, checkVersion, readU32LE } from './framing.js';

export interface FrameDecoderOptions {
  /** Largest body accepted; defaults to MAX_FRAME_BYTES (16 MiB). */
  maxFrameBytes?: number;
  /**
   * Copy payloads that would otherwise be views into pushed chunks. Views
   * are safe when chunks are not reused after push (true of `net.Socket`
   * data events) but keep the whole chunk alive; default false.
   */
  copyPayloads?: boolean;
}

export class FrameDecoder {
  readonly maxFrameBytes: number;
  private readonly copyPayloads: boolean;
  /** Header bytes of a frame whose header straddles chunks. */
  private readonly head = new Uint8Array(FRAME_HEADER_BYTES);
  private headLength = 0;
  /** Body of a frame that straddles chunks, and how much of it is in. */
  private body: Uint8Array | null = null;
  private bodyFilled = 0;
  private failure: FramingError | null = null;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.copyPayloads = options.copyPayloads ?? false;
  }

  /** Bytes held for a frame that is not complete yet. */
  get bufferedBytes(): number {
    return this.headLength + (this.body === null ? 0 : FRAME_HEADER_BYTES + this.bodyFilled);
  }

  /** The error that stopped this decoder, if any; it is final. */
  get error(): FramingError | null {
    return this.failure;
  }

  /**
   * Feeds a chunk; returns the frames it completed, in order. On bad bytes
   * it returns the frames completed before them and throws on the next
   * call (push or end), so no good frame is lost to a later bad one; after
   * that the decoder stays failed.
   */
  push(chunk: Uint8Array): Frame[] {
    if (this.failure) throw this.failure;
    const frames: Frame[] = [];
    try {
      this.consume(chunk, frames);
    } catch (error) {
      this.failure =
        error instanceof FramingError
          ? error
          : new FramingError('DECODE', String(error), {}, { cause: error });
      this.body = null;
      if (frames.length === 0) throw this.failure;
    }
    return frames;
  }

  /** Declares the end of the stream: throws UNEXPECTED_EOF mid-frame. */
  end(): void {
    if (this.failure) throw this.failure;
    const buffered = this.bufferedBytes;
    if (buffered > 0) {
      this.failure = new FramingError(
        'UNEXPECTED_EOF',
        `stream ended inside a frame (${buffered} bytes buffered)`,
        { buffered },
      );
      this.body = null;
      this.headLength = 0;
      throw this.failure;
    }
  }

  private consume(chunk: Uint8Array, frames: Frame[]): void {
    let at = 0;
    const size = chunk.length;
    while (at < size) {
      if (this.body !== null) {
        const body = this.body;
        const take = Math.min(body.length - this.bodyFilled, size - at);
        body.set(chunk.subarray(at, at + take), this.bodyFilled);
        this.bodyFilled += take;
        at += take;
        if (this.bodyFilled < body.length) return;
        this.body = null;
        this.bodyFilled = 0;
        frames.push(Frame.decode(body));
        continue;
      }
      let bodyLength: number;
      if (this.headLength > 0 || size - at < FRAME_HEADER_BYTES) {
        // Header straddles chunks: collect it byte by byte (at most 5).
        if (this.headLength === 0) checkVersion(chunk[at]!);
        while (this.headLength < FRAME_HEADER_BYTES && at < size) {
          this.head[this.headLength++] = chunk[at++]!;
        }
        if (this.headLength < FRAME_HEADER_BYTES) return;
        this.headLength = 0;
        bodyLength = readU32LE(this.head, 1);
        checkLength(bodyLength, this.maxFrameBytes);
      } else {
        checkVersion(chunk[at]!);
        bodyLength = readU32LE(chunk, at + 1);
        checkLength(bodyLength, this.maxFrameBytes);
        at += FRAME_HEADER_BYTES;
      }
      if (size - at >= bodyLength) {
        const view = chunk.subarray(at, at + bodyLength);
        const frame = Frame.decode(view);
        if (this.copyPayloads && frame.payload.length > 0) frame.payload = frame.payload.slice();
        frames.push(frame);
        at += bodyLength;
      } else {
        this.body = new Uint8Array(bodyLength);
        this.bodyFilled = 0;
      }
    }
  }
}
