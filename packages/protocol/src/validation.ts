// Hello validation (DESIGN §2.7): every cap and pattern a broker applies to
// the first frame of a connection, as a pure verdict. Lengths are UTF-8
// bytes, as they are on the wire, not UTF-16 code units.
import { PROTOCOL_VERSION } from './constants.js';
import { ErrorCode } from './enums.js';
import type { Hello } from './hello-codec.js';
import { utf8ByteLength } from './utf8.js';

export const SERVICE_NAME_PATTERN = /^[a-z0-9-]{1,64}$/;
export const VERSION_PATTERN = /^\d+\.\d+\.\d+(-[a-z0-9.]+)?$/;
export const MAX_WANTED_VERSION_BYTES = 64;
export const MAX_CLIENT_VERSION_BYTES = 128;
export const MAX_CLIENT_LIB_FIELD_BYTES = 64;

export type Verdict = { ok: true } | { ok: false; code: ErrorCode; reason: string; field?: string };

const OK: Verdict = Object.freeze({ ok: true });

function reject(code: ErrorCode, field: string, reason: string): Verdict {
  return { ok: false, code, reason, field };
}

/** `[a-z0-9-]{1,64}`; uppercase is rejected, never folded. */
export function validateServiceName(name: string): Verdict {
  if (!SERVICE_NAME_PATTERN.test(name)) {
    return reject(
      ErrorCode.PEER_REJECTED,
      'serviceName',
      `service name ${JSON.stringify(name.slice(0, 80))} must match [a-z0-9-]{1,64}`,
    );
  }
  return OK;
}

/** Required, ≤ 64 bytes, `MAJOR.MINOR.PATCH[-pre]`. */
export function validateVersion(version: string, field = 'wantedVersion'): Verdict {
  if (version.length === 0) return reject(ErrorCode.PEER_REJECTED, field, `${field} is required`);
  if (utf8ByteLength(version) > MAX_WANTED_VERSION_BYTES) {
    return reject(
      ErrorCode.PEER_REJECTED,
      field,
      `${field} exceeds ${MAX_WANTED_VERSION_BYTES} bytes`,
    );
  }
  if (!VERSION_PATTERN.test(version)) {
    return reject(
      ErrorCode.PEER_REJECTED,
      field,
      `${field} ${JSON.stringify(version)} must look like 1.2.3 or 1.2.3-pre.1`,
    );
  }
  return OK;
}

export interface HelloContext {
  /** The connected peer's pid from SO_PEERCRED, when known. */
  peerPid?: number;
  /** Protocol version this side speaks; defaults to PROTOCOL_VERSION. */
  protocolVersion?: number;
}

/** The Hello's free-text fields and their byte caps: made once, as every Hello is checked. */
const HELLO_FIELD_CAPS: readonly (readonly [
  'clientVersion' | 'clientLibName' | 'clientLibVersion',
  number,
])[] = [
  ['clientVersion', MAX_CLIENT_VERSION_BYTES],
  ['clientLibName', MAX_CLIENT_LIB_FIELD_BYTES],
  ['clientLibVersion', MAX_CLIENT_LIB_FIELD_BYTES],
];

/** Checks a decoded Hello; the first failing rule decides the verdict. */
export function validateHello(hello: Hello, context: HelloContext = {}): Verdict {
  const version = context.protocolVersion ?? PROTOCOL_VERSION;
  if (
    hello.clientMinProtocol > hello.clientMaxProtocol ||
    version < hello.clientMinProtocol ||
    version > hello.clientMaxProtocol
  ) {
    return reject(
      ErrorCode.VERSION_UNSUPPORTED,
      'clientMinProtocol',
      `client protocol range [${hello.clientMinProtocol}, ${hello.clientMaxProtocol}] does not include ${version}`,
    );
  }
  const name = validateServiceName(hello.serviceName);
  if (!name.ok) return name;
  const wanted = validateVersion(hello.wantedVersion);
  if (!wanted.ok) return wanted;
  for (const [field, max] of HELLO_FIELD_CAPS) {
    if (utf8ByteLength(hello[field]) > max) {
      return reject(ErrorCode.PEER_REJECTED, field, `${field} exceeds ${max} bytes`);
    }
  }
  if (hello.peerPid !== 0 && context.peerPid !== undefined && hello.peerPid !== context.peerPid) {
    return reject(
      ErrorCode.PEER_REJECTED,
      'peerPid',
      `claimed peer pid ${hello.peerPid} is not the kernel's ${context.peerPid}`,
    );
  }
  return OK;
}
