// The client side of the admin protocol (0xAD01): one connection, one
// AdminRequest, one AdminReply, all under one deadline. Used by the CLI; it
// owns its socket and always closes it. Rendering replies is the caller's.
import { connect } from 'node:net';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminReply,
  AdminRequest,
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  MAX_FRAME_BYTES,
  requestFrame,
} from '@handoff/protocol';
import { BrokerError } from '../errors.js';

export type AdminClientErrorCode = 'CONNECT' | 'TIMEOUT' | 'CLOSED' | 'PROTOCOL';

export class AdminClientError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:AdminClientError';
  override readonly name = 'AdminClientError';
  declare readonly code: AdminClientErrorCode;
  readonly socketPath: string;
  /** The errno name (ECONNREFUSED, ENOENT, …) when a syscall failed. */
  readonly errno: string | undefined;
  constructor(
    code: AdminClientErrorCode,
    socketPath: string,
    message: string,
    errno?: string,
    cause?: unknown,
  ) {
    super(code, message, { cause });
    this.socketPath = socketPath;
    this.errno = errno;
  }
}

export interface AdminRequestOptions {
  /** Deadline for the whole exchange, connect included (default 5000 ms). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One request per connection, so the id is fixed; 0 would be "no id". */
const REQUEST_ID = 1n;

/** Sends one admin request to the broker at `socketPath` and returns its reply. */
export function adminRequest(
  socketPath: string,
  request: Partial<AdminRequest>,
  options: AdminRequestOptions = {},
): Promise<AdminReply> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const payload = AdminRequest.encode(AdminRequest.create(request));
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    // Metrics of a large broker can be big: allow any legal frame.
    const decoder = new FrameDecoder({ maxFrameBytes: MAX_FRAME_BYTES });
    let connected = false;
    let settled = false;
    const finish = (error: AdminClientError | null, reply?: AdminReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (error) reject(error);
      else resolve(reply!);
    };
    const onAbort = () =>
      finish(
        new AdminClientError(
          'TIMEOUT',
          socketPath,
          'admin request aborted',
          undefined,
          options.signal?.reason,
        ),
      );
    const timer = setTimeout(
      () =>
        finish(
          new AdminClientError(
            'TIMEOUT',
            socketPath,
            `the broker at ${socketPath} did not answer within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    socket.on('connect', () => {
      connected = true;
      socket.write(
        encodeFramed(
          requestFrame({
            payloadProtocol: ADMIN_PAYLOAD_PROTOCOL,
            payload,
            requestId: REQUEST_ID,
          }),
        ),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        return finish(
          new AdminClientError(
            'PROTOCOL',
            socketPath,
            `the broker sent bytes that are not a frame: ${(error as Error).message}`,
            undefined,
            error,
          ),
        );
      }
      const [frame] = frames;
      if (!frame) return;
      const [error, reply] = checkReply(socketPath, frame);
      finish(error, reply);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const errno = error.code;
      finish(
        connected
          ? new AdminClientError(
              'CLOSED',
              socketPath,
              `connection to the broker at ${socketPath} failed (${errno ?? error.message})`,
              errno,
              error,
            )
          : new AdminClientError(
              'CONNECT',
              socketPath,
              `cannot connect to ${socketPath} (${errno ?? error.message})`,
              errno,
              error,
            ),
      );
    });
    socket.on('close', () =>
      finish(
        new AdminClientError(
          'CLOSED',
          socketPath,
          `the broker at ${socketPath} closed the connection without answering`,
        ),
      ),
    );
  });
}

function checkReply(
  socketPath: string,
  frame: Frame,
): [AdminClientError, undefined] | [null, AdminReply] {
  const fail = (message: string): [AdminClientError, undefined] => [
    new AdminClientError('PROTOCOL', socketPath, message),
    undefined,
  ];
  if (frame.kind !== FrameKind.RESPONSE)
    return fail(`expected a RESPONSE frame, got kind ${frame.kind}`);
  if (frame.payloadProtocol !== ADMIN_PAYLOAD_PROTOCOL) {
    return fail(
      `expected an answer on payload protocol 0xAD01, got 0x${frame.payloadProtocol.toString(16)}`,
    );
  }
  if (frame.requestId !== REQUEST_ID)
    return fail(`expected the answer to request 1, got request ${frame.requestId}`);
  try {
    return [null, AdminReply.decode(frame.payload)];
  } catch (error) {
    return fail(`the answer is not an AdminReply: ${(error as Error).message}`);
  }
}
