// One native recv call's results turned into messages: the records array the
// addon fills, the decode into ReceivedMessage (data as views of the batch
// buffer) and the errors for messages the addon rejected. Delivering them is
// message-reader.ts's job.
import { FdPassError } from './errors.js';
import type { HotConstants } from './hot-constants.js';
import type { NativeBinding } from './native-loader.js';

export interface ReceivedMessage {
  data: Buffer;
  /** Now owned by the receiver: close them (closeFd) or adopt them. */
  fds: number[];
}

/** A message the addon received and rejected; its fds are already closed. */
export class RejectedMessage {
  constructor(
    readonly code: string,
    readonly fdCount: number,
    readonly bytes: number,
    /** Delivered without fds on a stream (the byte stream stays intact). */
    readonly data: Buffer,
  ) {}
}

/** Messages per native recv call (the addon batches them with recvmmsg). */
export const RECV_BATCH = 64;
/**
 * Received messages share one buffer per batch (`data` is a view) when the
 * batch is this small, or when the message is at least half of it, so a kept
 * message never pins much more than itself.
 */
const SHARED_BATCH_BYTES = 64 * 1024;

/** recv records, shared by the sockets of this realm: decoded right after each call. */
let records: Int32Array | undefined;

export function recordsArray(): Int32Array {
  // Header, then RECV_BATCH entries of (code, bytes, fdCount, 253 fds).
  records ??= new Int32Array(2 + RECV_BATCH * (3 + 253));
  return records;
}

/** Turns recv records into messages (data as views of the batch buffer) and rejects. */
export function decodeBatch(
  native: NativeBinding,
  hot: HotConstants,
  seqpacket: boolean,
  recs: Int32Array,
  count: number,
  batch: Buffer | undefined,
): Array<ReceivedMessage | RejectedMessage> {
  const { RECV_OK } = hot;
  const total = batch === undefined ? 0 : batch.length;
  const out = new Array<ReceivedMessage | RejectedMessage>(count);
  let pos = 2;
  let offset = 0;
  for (let m = 0; m < count; m++) {
    const code = recs[pos] as number;
    const bytes = recs[pos + 1] as number;
    const fdCount = recs[pos + 2] as number;
    pos += 3;
    const carried = code === RECV_OK || !seqpacket ? bytes : 0;
    let data: Buffer;
    if (batch === undefined || carried === 0) {
      data = Buffer.alloc(0);
    } else if (carried === total) {
      // The only message with bytes (the usual stream read): no view needed.
      data = batch;
    } else if (total <= SHARED_BATCH_BYTES || carried * 2 >= total) {
      data = batch.subarray(offset, offset + carried);
    } else {
      data = Buffer.from(batch.subarray(offset, offset + carried));
    }
    offset += carried;
    if (code !== RECV_OK) {
      out[m] = new RejectedMessage(receiveCode(native, code), fdCount, bytes, data);
      continue;
    }
    const fds = new Array<number>(fdCount);
    for (let k = 0; k < fdCount; k++) fds[k] = recs[pos + k] as number;
    pos += fdCount;
    out[m] = { data, fds };
  }
  return out;
}

function receiveCode(native: NativeBinding, code: number): string {
  const { RECV_TOO_MANY_FDS, RECV_CONTROL_TRUNCATED } = native.constants;
  if (code === RECV_TOO_MANY_FDS) return 'ERR_TOO_MANY_FDS';
  if (code === RECV_CONTROL_TRUNCATED) return 'ERR_CONTROL_TRUNCATED';
  return 'ERR_DATA_TRUNCATED';
}

export function receiveError(
  code: string,
  fdCount: number,
  bytes: number,
  cap: number,
): FdPassError {
  switch (code) {
    case 'ERR_TOO_MANY_FDS':
      return new FdPassError(
        code,
        `received a message with more than ${cap} fds; all ${fdCount} that arrived were closed`,
      );
    case 'ERR_CONTROL_TRUNCATED':
      return new FdPassError(
        code,
        `control data truncated (MSG_CTRUNC): fds were lost in the kernel; the ${fdCount} that arrived were closed`,
      );
    default:
      return new FdPassError(
        code,
        `message longer than the ${bytes}-byte receive buffer was truncated (MSG_TRUNC); its ${fdCount} fds were closed`,
      );
  }
}
