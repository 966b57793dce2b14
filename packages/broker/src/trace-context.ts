// W3C trace context on broker frames. A client's Hello may carry a
// `traceparent` (and `tracestate`); the broker echoes it on its reply, puts
// it on the handoff offer (so the daemon's relay and logs carry it) and on
// its own log lines. Malformed values are dropped rather than propagated:
// they come from an untrusted peer and end up in other processes' logs.

/** version-traceid-parentid-flags, lowercase hex (W3C Trace Context level 1). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_PARENT = '0'.repeat(16);
/** The spec lets tracestate hold 32 list members; 512 bytes is its suggested floor. */
export const MAX_TRACESTATE_BYTES = 512;
const TRACESTATE = /^[\x20-\x7e]*$/;

export interface TraceContext {
  traceparent: string;
  tracestate: string;
}

const NONE: TraceContext = Object.freeze({ traceparent: '', tracestate: '' });

/** The frame's trace context if its traceparent is valid; empty strings otherwise. */
export function traceContext(frame: { traceparent: string; tracestate: string }): TraceContext {
  if (frame.traceparent === '' || !isValidTraceparent(frame.traceparent)) return NONE;
  const state = frame.tracestate;
  const keepState = state.length <= MAX_TRACESTATE_BYTES && TRACESTATE.test(state);
  return { traceparent: frame.traceparent, tracestate: keepState ? state : '' };
}

export function isValidTraceparent(value: string): boolean {
  const match = TRACEPARENT.exec(value);
  if (!match) return false;
  // Version ff is forbidden; all-zero trace and parent ids are invalid.
  return match[1] !== 'ff' && match[2] !== ZERO_TRACE && match[3] !== ZERO_PARENT;
}
