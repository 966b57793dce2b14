// The message a daemon opens its control channel with: one framed
// ChannelRegistration event (what BrokerAttachment sends), for tests and
// fixtures that play the daemon's end of a BackendChannel themselves.
import {
  ChannelRegistration,
  encodeFramed,
  eventFrame,
  HANDOFF_PAYLOAD_PROTOCOL,
} from '@handoff/protocol';

export function registrationMessage(
  registration: Parameters<typeof ChannelRegistration.encode>[0],
): Uint8Array {
  return encodeFramed(
    eventFrame(
      { payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL, requestId: 0n, traceparent: '', tracestate: '' },
      { payload: ChannelRegistration.encode(registration) },
    ),
  );
}
