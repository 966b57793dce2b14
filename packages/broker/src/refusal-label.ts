// The `code` label of hello_refused_total: which Refused code a Hello was
// answered with, spelled as the protocol names it. The metric itself is
// metrics.ts's; where Hellos are refused is hello-router.ts's.
import { ErrorCode } from '@handoff/protocol';

/** A Refused code as the `code` label spells it: its protocol name (`RATE_LIMITED`), or `CODE_<n>` for a number this build does not know. */
export function refusalCodeLabel(code: ErrorCode): string {
  return ErrorCode[code] ?? `CODE_${code}`;
}

/** What a Hello outcome refused with when the router did not name the code. */
const OUTCOME_CODES: ReadonlyMap<string, ErrorCode> = new Map([
  ['rate_limited', ErrorCode.RATE_LIMITED],
  ['fd_pressure', ErrorCode.FD_PRESSURE],
  ['rejected', ErrorCode.PEER_REJECTED],
  ['spawn_failed', ErrorCode.BACKEND_SPAWN_FAILED],
]);

/**
 * The `code` label of a Hello's refusal, or undefined when it was routed
 * (`handoff`, `reconnect`). `code` is what the client was told, when the
 * router passes it; else the outcome says it.
 */
export function refusalLabelFor(outcome: string, code?: ErrorCode): string | undefined {
  if (outcome === 'handoff' || outcome === 'reconnect') return undefined;
  return refusalCodeLabel(code ?? OUTCOME_CODES.get(outcome) ?? ErrorCode.UNSPECIFIED);
}
