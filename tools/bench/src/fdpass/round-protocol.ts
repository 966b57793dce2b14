// The tiny wire protocol every fdpass-suite implementation speaks (C,
// Python, ours, Node's built-in IPC), so they all do the same work: a round
// is N messages of 8 bytes with K fds each, byte 0 = 1 on the last one;
// the receiver closes every fd and answers with the count (u64 LE).

export const MESSAGE_BYTES = 8;

/** The opening bytes of every message; `last` marks the end of a round. */
export function roundMessage(last: boolean): Uint8Array {
  const data = new Uint8Array(MESSAGE_BYTES);
  data[0] = last ? 1 : 0;
  return data;
}

export function isLast(data: Uint8Array): boolean {
  return data[0] === 1;
}

export function countMessage(count: number): Uint8Array {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setBigUint64(0, BigInt(count), true);
  return data;
}

export function readCount(data: Uint8Array): number {
  if (data.byteLength !== 8) throw new Error(`expected an 8-byte count, got ${data.byteLength}`);
  return Number(new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true));
}
