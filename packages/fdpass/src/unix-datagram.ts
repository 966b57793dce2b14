// sendUnixDatagram: one datagram to an AF_UNIX SOCK_DGRAM socket, which
// Node's net and dgram modules cannot address (systemd's NOTIFY_SOCKET is
// one). Keeps no socket: each call makes one, sends, and closes it.
import { fromNative } from './errors.js';
import { loadNative } from './native-loader.js';

/** sun_path holds 108 bytes: a path needs one for its NUL, an abstract name one for its leading NUL. */
const MAX_ADDRESS_BYTES = 107;

const encoder = new TextEncoder();

/**
 * The bytes of `address` as the kernel takes them: a filesystem path as is,
 * an abstract name (written `@name`, systemd's convention) with its `@`
 * replaced by the leading NUL and no trailing NUL.
 */
function addressBytes(address: string): Uint8Array {
  const usage =
    'Usage: sendUnixDatagram(address: non-empty path or @abstract-name, data: Uint8Array)';
  if (typeof address !== 'string' || address.length === 0 || address === '@') {
    throw new TypeError(usage);
  }
  const abstract = address.startsWith('@');
  const name = encoder.encode(abstract ? address.slice(1) : address);
  // A NUL inside a path would silently shorten it.
  if (!abstract && name.includes(0)) throw new TypeError(`${usage}: the path contains a NUL byte`);
  if (name.length > MAX_ADDRESS_BYTES) {
    throw new TypeError(
      `${usage}: the address is ${name.length} bytes, at most ${MAX_ADDRESS_BYTES} fit`,
    );
  }
  if (!abstract) return name;
  const bytes = new Uint8Array(name.length + 1);
  bytes.set(name, 1);
  return bytes;
}

/**
 * Sends `data` as one datagram to the Unix datagram socket at `address`: a
 * filesystem path, or an abstract-namespace name written with a leading `@`
 * (Linux). Synchronous and non-blocking: a receiver whose queue is full
 * fails with EAGAIN instead of being waited for. Throws FdPassError with the
 * errno name as `code` (ENOENT: no such socket; ECONNREFUSED: nobody bound
 * there; EPROTOTYPE: not a datagram socket; EMSGSIZE: too large), TypeError
 * for a malformed address or data.
 */
export function sendUnixDatagram(address: string, data: Uint8Array): void {
  const bytes = addressBytes(address);
  if (!(data instanceof Uint8Array)) {
    throw new TypeError('Usage: sendUnixDatagram(address, data: Uint8Array)');
  }
  try {
    loadNative().sendDatagram(bytes, data);
  } catch (err) {
    throw fromNative(err, address);
  }
}
