// The socket-session wire format (BIND 10 layout): the forwarded fd with a
// 1-byte payload, then a length-prefixed header (family, type, protocol, both
// endpoints), then the data. Encoding, the limits and decoding addresses live
// here; sending is session-forwarder.ts, parsing a stream session-receiver.ts.
import { FdPassError } from './errors.js';
import { loadNative, type NativeBinding } from './native-loader.js';

/** sizeof(struct sockaddr_storage): no real address image is longer. */
export const MAX_SOCKADDR_SIZE = 128;
/** Default cap on session data, both when forwarding and when receiving. */
export const DEFAULT_MAX_SESSION_DATA = 64 * 1024;

// family, type, protocol, local size, remote size, data size: six u32 fields.
export const FIXED_HEADER_BYTES = 24;
export const MAX_HEADER_BYTES = FIXED_HEADER_BYTES + 2 * MAX_SOCKADDR_SIZE;

export type SessionAddress =
  | {
      family: 'inet' | 'inet6';
      address: string;
      port: number;
      flowinfo?: number;
      scopeId?: number;
      /** The sockaddr image as it travelled. */
      raw: Buffer;
    }
  | { family: 'unix'; path: string; abstract: boolean; raw: Buffer }
  | { family: 'unknown'; raw: Buffer };

export interface SocketSession {
  /** The forwarded socket, now owned by the receiver of this event. */
  fd: number;
  /** AF_* / SOCK_* / IPPROTO_* numbers as the forwarder's kernel reported them. */
  family: number;
  type: number;
  protocol: number;
  local: SessionAddress;
  /** family 'unknown' with an empty image when the socket was not connected. */
  remote: SessionAddress;
  /** Bytes the forwarder had already read from the socket. */
  data: Buffer;
}

export function checkMaxData(value: number | undefined, where: string): number {
  const v = value ?? DEFAULT_MAX_SESSION_DATA;
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new TypeError(`Usage: ${where}: maxDataSize must be an integer 0..2^32-1`);
  }
  return v;
}

export /** Encodes a full session (dummy byte + header + data) for one sendmsg. */
function encodeSession(
  family: number,
  type: number,
  protocol: number,
  local: Uint8Array,
  remote: Uint8Array,
  data: Uint8Array,
): Buffer {
  const headerLength = FIXED_HEADER_BYTES + local.length + remote.length;
  const out = Buffer.allocUnsafe(1 + 2 + headerLength + data.length);
  let o = 0;
  // The payload that carries the fd; its value means nothing.
  out[o++] = 0;
  o = out.writeUInt16BE(headerLength, o);
  o = out.writeUInt32BE(family >>> 0, o);
  o = out.writeUInt32BE(type >>> 0, o);
  o = out.writeUInt32BE(protocol >>> 0, o);
  o = out.writeUInt32BE(local.length, o);
  out.set(local, o);
  o += local.length;
  o = out.writeUInt32BE(remote.length, o);
  out.set(remote, o);
  o += remote.length;
  o = out.writeUInt32BE(data.length, o);
  out.set(data, o);
  return out;
}

/** The error for a malformed or cut-off session; the receiver then closes the channel. */
export function incomplete(why: string): FdPassError {
  return new FdPassError('ERR_INCOMPLETE_SESSION', `incomplete socket session: ${why}`);
}

/** Decodes a sockaddr image as carried in a session. */
export function decodeSessionAddress(raw: Uint8Array): SessionAddress {
  return decodeAddress(loadNative(), Buffer.from(raw));
}

export function decodeAddress(native: NativeBinding, raw: Buffer): SessionAddress {
  if (raw.length === 0) return { family: 'unknown', raw };
  const d = native.decodeSockaddr(raw);
  if ((d.kind === 'inet' || d.kind === 'inet6') && d.address !== undefined) {
    const out: SessionAddress = { family: d.kind, address: d.address, port: d.port ?? 0, raw };
    if (d.kind === 'inet6') {
      if (d.flowinfo !== undefined) out.flowinfo = d.flowinfo;
      if (d.scopeId !== undefined) out.scopeId = d.scopeId;
    }
    return out;
  }
  if (d.kind === 'unix') {
    const bytes = d.path ?? Buffer.alloc(0);
    const abstract = bytes.length > 0 && bytes[0] === 0;
    return { family: 'unix', path: bytes.toString(abstract ? 'latin1' : 'utf8'), abstract, raw };
  }
  return { family: 'unknown', raw };
}
