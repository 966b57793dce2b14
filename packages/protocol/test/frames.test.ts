import { describe, expect, it } from 'vitest';
import {
  cancelFrame,
  eventFrame,
  FrameKind,
  PayloadEncoding,
  requestFrame,
  responseFrame,
} from '../src/index.js';

const request = requestFrame({
  payloadProtocol: 0xf00d,
  payload: new Uint8Array([1]),
  requestId: 2n ** 64n - 1n,
  deadlineUnixMs: 99n,
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'rojo=00f067aa0ba902b7',
});

describe('frame builders', () => {
  it('builds a request with envelope version 1 and the given fields', () => {
    expect(request).toMatchObject({
      envelopeVersion: 1,
      kind: FrameKind.REQUEST,
      payloadProtocol: 0xf00d,
      deadlineUnixMs: 99n,
    });
  });

  it('a response echoes request id, protocol, traceparent and tracestate, not the deadline', () => {
    const response = responseFrame(request, { payload: new Uint8Array([2]) });
    expect(response).toStrictEqual({
      envelopeVersion: 1,
      kind: FrameKind.RESPONSE,
      payloadProtocol: 0xf00d,
      payload: new Uint8Array([2]),
      requestId: request.requestId,
      payloadEncoding: PayloadEncoding.NONE,
      deadlineUnixMs: 0n,
      traceparent: request.traceparent,
      tracestate: request.tracestate,
    });
  });

  it('events and cancels carry the same correlation', () => {
    expect(eventFrame(request, { payloadEncoding: PayloadEncoding.ZSTD })).toMatchObject({
      kind: FrameKind.EVENT,
      requestId: request.requestId,
      payloadEncoding: PayloadEncoding.ZSTD,
      traceparent: request.traceparent,
    });
    expect(cancelFrame(request)).toMatchObject({
      kind: FrameKind.CANCEL,
      requestId: request.requestId,
      payload: new Uint8Array(0),
    });
  });

  it('a reply may name another payload protocol', () => {
    expect(responseFrame(request, { payloadProtocol: 0xd0ff }).payloadProtocol).toBe(0xd0ff);
  });
});
