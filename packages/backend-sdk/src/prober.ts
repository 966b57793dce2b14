// The client side of an identity probe (DESIGN §2.4): challenge a daemon
// endpoint with a fresh nonce and verify everything the answer claims —
// the reference's checks (kind, protocol, request id, nonce echo, identity
// fields) plus ours: the kernel's SO_PEERCRED for the connected socket must
// name the claimed pid and the expected uid, and /proc must agree on when
// that pid started, so a recycled pid or a forwarding impostor fails.
import { randomBytes } from 'node:crypto';
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import { peerCredentials } from '@handoff/fdpass';
import {
  DaemonProcess,
  type Endpoint,
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  PROBE_NONCE_BYTES,
  requestFrame,
} from '@handoff/protocol';
import { BackendSdkError } from './errors.js';
import { bootId, processStartTimeMs } from './proc-info.js';

export type ProbeErrorCode =
  | 'CONNECT'
  | 'TIMEOUT'
  | 'CLOSED'
  | 'UNEXPECTED_FRAME'
  | 'MALFORMED_PAYLOAD'
  | 'NONCE_MISMATCH'
  | 'ENDPOINT_MISMATCH'
  | 'IDENTITY_MISMATCH'
  | 'PEER_CREDENTIALS'
  | 'START_TIME';

export class ProbeError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:ProbeError';
  override readonly name = 'ProbeError';
  declare readonly code: ProbeErrorCode;
  /** For IDENTITY_MISMATCH / PEER_CREDENTIALS: which field disagreed. */
  readonly field: string | undefined;
  constructor(code: ProbeErrorCode, message: string, field?: string, cause?: unknown) {
    super(code, message, { cause });
    this.field = field;
  }
}

/** What the prober expects; unset fields are not compared. */
export interface ExpectedIdentity {
  pid?: number;
  exePath?: string;
  exeHash?: Uint8Array;
  /** Defaults to this machine's current boot id. */
  bootId?: string;
  /** Defaults to this process's uid. */
  uid?: number;
  entryScriptHash?: Uint8Array;
}

export interface ProbeOptions {
  /** Deadline for the whole probe, connect included (default 500 ms, as the reference). */
  timeoutMs?: number;
  /** Largest allowed gap between claimed and kernel start time (default 2000 ms). */
  startTimeToleranceMs?: number;
  signal?: AbortSignal;
}

export interface VerifiedIdentity {
  identity: DaemonProcess;
  /** The legacy trailer (SHA-256 of the executable), when present. */
  legacyExeSha256: Uint8Array | undefined;
  peer: { pid: number; uid: number; gid: number };
  /** Connect to verified answer, in milliseconds. */
  roundTripMs: number;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Probes the daemon at `endpoint` (a socket path or Endpoint) and verifies its answer. */
export async function probeDaemon(
  endpoint: string | Endpoint,
  expected: ExpectedIdentity = {},
  options: ProbeOptions = {},
): Promise<VerifiedIdentity> {
  const target: Endpoint =
    typeof endpoint === 'string' ? { namespaceId: '', path: endpoint } : endpoint;
  const started = performance.now();
  const nonce = new Uint8Array(randomBytes(PROBE_NONCE_BYTES));
  const requestId = new DataView(nonce.buffer).getBigUint64(0, true);
  const { frame, socket } = await exchange(target.path, nonce, requestId, options);
  try {
    const peer = peerCredentials(socket);
    const { identity, legacyExeSha256 } = checkAnswer(frame, nonce, requestId);
    await verify(identity, target, expected, peer, options.startTimeToleranceMs ?? 2000);
    return { identity, legacyExeSha256, peer, roundTripMs: performance.now() - started };
  } finally {
    socket.destroy();
  }
}

/** The framed probe request: a challenge of `nonce` (PROBE_NONCE_BYTES) under `requestId`. */
export function encodeProbeChallenge(nonce: Uint8Array, requestId: bigint): Uint8Array {
  return encodeFramed(
    requestFrame({ payloadProtocol: IDENTITY_PROBE_PAYLOAD_PROTOCOL, payload: nonce, requestId }),
  );
}

/** Connects, sends the challenge and waits for one frame, all under one deadline. */
function exchange(
  path: string,
  nonce: Uint8Array,
  requestId: bigint,
  options: ProbeOptions,
): Promise<{ frame: Frame; socket: Socket }> {
  const timeoutMs = options.timeoutMs ?? 500;
  return new Promise((resolve, reject) => {
    // No prototype on the options: Node's Socket constructor reads a dozen
    // unset options, which on a plain object take V8's slow path on every
    // connect (about half of a bare connect's instructions; see
    // @handoff/broker's client/unix-connect.ts).
    const socket = connect({ __proto__: null, path } as NetConnectOpts);
    const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
    let settled = false;
    const finish = (error: ProbeError | null, frame?: Frame) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('data');
      if (error) {
        socket.destroy();
        reject(error);
      } else resolve({ frame: frame!, socket });
    };
    const onAbort = () =>
      finish(
        new ProbeError('TIMEOUT', `probe of ${path} aborted`, undefined, options.signal?.reason),
      );
    const timer = setTimeout(
      () =>
        finish(new ProbeError('TIMEOUT', `probe of ${path} got no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let connected = false;
    socket.on('connect', () => {
      connected = true;
      socket.write(encodeProbeChallenge(nonce, requestId));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        const [frame] = decoder.push(chunk);
        if (frame) finish(null, frame);
      } catch (error) {
        finish(
          new ProbeError(
            'UNEXPECTED_FRAME',
            `probe answer is not a valid frame: ${(error as Error).message}`,
            undefined,
            error,
          ),
        );
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish(
        connected
          ? new ProbeError(
              'CLOSED',
              `probe connection failed: ${error.code ?? error.message}`,
              undefined,
              error,
            )
          : new ProbeError(
              'CONNECT',
              `cannot connect to ${path}: ${error.code ?? error.message}`,
              undefined,
              error,
            ),
      ),
    );
    socket.on('close', () =>
      finish(new ProbeError('CLOSED', `${path} closed the connection before answering the probe`)),
    );
  });
}

function checkAnswer(frame: Frame, nonce: Uint8Array, requestId: bigint) {
  if (frame.kind !== FrameKind.RESPONSE)
    throw new ProbeError('UNEXPECTED_FRAME', `answer kind ${frame.kind} is not RESPONSE`, 'kind');
  if (frame.payloadProtocol !== IDENTITY_PROBE_PAYLOAD_PROTOCOL) {
    throw new ProbeError(
      'UNEXPECTED_FRAME',
      `answer on payload protocol ${frame.payloadProtocol}, not 0xB232`,
      'payloadProtocol',
    );
  }
  if (frame.requestId !== requestId)
    throw new ProbeError(
      'UNEXPECTED_FRAME',
      `answer request id ${frame.requestId} is not ${requestId}`,
      'requestId',
    );
  if (frame.payload.length < PROBE_NONCE_BYTES)
    throw new ProbeError(
      'MALFORMED_PAYLOAD',
      `answer payload of ${frame.payload.length} bytes has no nonce`,
    );
  if (!sameBytes(frame.payload.subarray(0, PROBE_NONCE_BYTES), nonce))
    throw new ProbeError('NONCE_MISMATCH', 'answer does not echo our nonce');
  const rest = frame.payload.subarray(PROBE_NONCE_BYTES);
  let identity: DaemonProcess;
  try {
    identity = DaemonProcess.decode(rest);
  } catch (error) {
    throw new ProbeError(
      'MALFORMED_PAYLOAD',
      `answer identity does not decode: ${(error as Error).message}`,
      undefined,
      error,
    );
  }
  if (!identity.ipcEndpoint)
    throw new ProbeError('MALFORMED_PAYLOAD', 'answer identity has no endpoint', 'ipcEndpoint');
  if (identity.exeHashAlgorithm !== 'blake3') {
    throw new ProbeError(
      'MALFORMED_PAYLOAD',
      `hash algorithm ${JSON.stringify(identity.exeHashAlgorithm)} is not "blake3"`,
      'exeHashAlgorithm',
    );
  }
  if (identity.exeHash.length !== 32)
    throw new ProbeError(
      'MALFORMED_PAYLOAD',
      `exe hash is ${identity.exeHash.length} bytes, not 32`,
      'exeHash',
    );
  // The legacy trailer is field 3 (0x1A), 32 bytes: the last 34 bytes.
  const trailer =
    rest.length >= 34 && rest[rest.length - 34] === 0x1a && rest[rest.length - 33] === 0x20;
  return {
    identity,
    legacyExeSha256: trailer ? new Uint8Array(rest.subarray(rest.length - 32)) : undefined,
  };
}

async function verify(
  identity: DaemonProcess,
  target: Endpoint,
  expected: ExpectedIdentity,
  peer: { pid: number; uid: number },
  toleranceMs: number,
): Promise<void> {
  const claimed = identity.ipcEndpoint!;
  if (
    claimed.path !== target.path ||
    (target.namespaceId !== '' && claimed.namespaceId !== target.namespaceId)
  ) {
    throw new ProbeError(
      'ENDPOINT_MISMATCH',
      `daemon claims endpoint ${claimed.path}, probed ${target.path}`,
      'ipcEndpoint',
    );
  }
  const mismatch = (field: string, want: unknown, got: unknown) =>
    new ProbeError('IDENTITY_MISMATCH', `${field}: expected ${want}, daemon claims ${got}`, field);
  if (expected.pid !== undefined && identity.pid !== expected.pid)
    throw mismatch('pid', expected.pid, identity.pid);
  if (expected.exePath !== undefined && identity.exePath !== expected.exePath)
    throw mismatch('exePath', expected.exePath, identity.exePath);
  if (expected.exeHash !== undefined && !sameBytes(identity.exeHash, expected.exeHash)) {
    throw mismatch('exeHash', hex(expected.exeHash), hex(identity.exeHash));
  }
  if (
    expected.entryScriptHash !== undefined &&
    !sameBytes(identity.entryScriptHash, expected.entryScriptHash)
  ) {
    throw mismatch('entryScriptHash', hex(expected.entryScriptHash), hex(identity.entryScriptHash));
  }
  const boot = expected.bootId ?? (await bootId());
  if (identity.bootId !== boot) throw mismatch('bootId', boot, identity.bootId);
  // Ours: the kernel, not the daemon, says who answered.
  if (peer.pid !== identity.pid) {
    throw new ProbeError(
      'PEER_CREDENTIALS',
      `the answering socket belongs to pid ${peer.pid}, the daemon claims pid ${identity.pid}`,
      'pid',
    );
  }
  const uid = expected.uid ?? process.getuid?.();
  if (uid !== undefined && peer.uid !== uid) {
    throw new ProbeError(
      'PEER_CREDENTIALS',
      `the answering socket belongs to uid ${peer.uid}, expected uid ${uid}`,
      'uid',
    );
  }
  let kernelStart: number;
  try {
    kernelStart = await processStartTimeMs(identity.pid);
  } catch (error) {
    throw new ProbeError(
      'START_TIME',
      `cannot read the start time of pid ${identity.pid}: ${(error as Error).message}`,
      'startedAtUnixMs',
      error,
    );
  }
  const gap = Math.abs(Number(identity.startedAtUnixMs) - kernelStart);
  if (gap > toleranceMs) {
    throw new ProbeError(
      'START_TIME',
      `pid ${identity.pid} started at ${Math.round(kernelStart)} (kernel), the daemon claims ${identity.startedAtUnixMs}: a recycled pid or a stale identity`,
      'startedAtUnixMs',
    );
  }
}
