// Builders for the four frame kinds. A response, event or cancel that
// answers a request echoes its requestId, traceparent and tracestate, so
// correlation and tracing survive every hop without the caller copying.
import { ENVELOPE_VERSION } from './constants.js';
import { FrameKind, PayloadEncoding } from './enums.js';
import type { Frame } from './frame-codec.js';

export interface FrameInit {
  payloadProtocol: number;
  payload?: Uint8Array;
  requestId?: bigint;
  payloadEncoding?: PayloadEncoding;
  deadlineUnixMs?: bigint;
  traceparent?: string;
  tracestate?: string;
}

const EMPTY = new Uint8Array(0);

function build(kind: FrameKind, init: FrameInit): Frame {
  return {
    envelopeVersion: ENVELOPE_VERSION,
    kind,
    payloadProtocol: init.payloadProtocol,
    payload: init.payload ?? EMPTY,
    requestId: init.requestId ?? 0n,
    payloadEncoding: init.payloadEncoding ?? PayloadEncoding.NONE,
    deadlineUnixMs: init.deadlineUnixMs ?? 0n,
    traceparent: init.traceparent ?? '',
    tracestate: init.tracestate ?? '',
  };
}

export function requestFrame(init: FrameInit): Frame {
  return build(FrameKind.REQUEST, init);
}

/** The fields of a request a reply carries over. */
export type Correlation = Pick<
  Frame,
  'payloadProtocol' | 'requestId' | 'traceparent' | 'tracestate'
>;

export interface ReplyInit {
  payload?: Uint8Array;
  payloadEncoding?: PayloadEncoding;
  /** Defaults to the request's payload protocol. */
  payloadProtocol?: number;
}

function reply(kind: FrameKind, request: Correlation, init: ReplyInit): Frame {
  return build(kind, {
    payloadProtocol: init.payloadProtocol ?? request.payloadProtocol,
    requestId: request.requestId,
    traceparent: request.traceparent,
    tracestate: request.tracestate,
    ...(init.payload ? { payload: init.payload } : {}),
    ...(init.payloadEncoding !== undefined ? { payloadEncoding: init.payloadEncoding } : {}),
  });
}

/** A RESPONSE to `request`: same protocol, request id and trace context. */
export function responseFrame(request: Correlation, init: ReplyInit = {}): Frame {
  return reply(FrameKind.RESPONSE, request, init);
}

/** An EVENT on `request`'s stream (same correlation as a response). */
export function eventFrame(request: Correlation, init: ReplyInit = {}): Frame {
  return reply(FrameKind.EVENT, request, init);
}

/** A CANCEL of an earlier request: no payload. */
export function cancelFrame(request: Correlation): Frame {
  return reply(FrameKind.CANCEL, request, {});
}
