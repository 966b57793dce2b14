// Tour, part 1: the wire contract. A Hello is framed, cut into chunks as a
// socket might deliver it, reassembled, validated; then a bad one is refused.
import {
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  ErrorCode,
  encodeFramed,
  FrameDecoder,
  Hello,
  HelloReply,
  MAX_HELLO_BYTES,
  PROTOCOL_VERSION,
  Refused,
  requestFrame,
  validateHello,
} from '@handoff/protocol';
import type { Narrator } from './narrate.ts';

export function protocolTour(say: Narrator): void {
  say.section('1. The v1 wire contract (@handoff/protocol)');
  const hello = Hello.create({
    clientMinProtocol: PROTOCOL_VERSION,
    clientMaxProtocol: PROTOCOL_VERSION,
    serviceName: 'demo-kv',
    wantedVersion: '1.0.0',
    clientCapabilities: CAP_HANDLE_PASSING,
    connectionId: 2n ** 64n - 1n,
    peerPid: process.pid,
  });
  const wire = encodeFramed(
    requestFrame({
      payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
      payload: Hello.encode(hello),
      requestId: 1n,
    }),
  );
  say.step(
    `framed a Hello: ${wire.length} bytes, header ${hex(wire.subarray(0, 5))} (version 1, u32 LE body length)`,
  );

  const decoder = new FrameDecoder({ maxFrameBytes: MAX_HELLO_BYTES });
  const cuts = [3, 11, wire.length];
  const frames = [];
  let from = 0;
  for (const to of cuts) {
    frames.push(...decoder.push(wire.subarray(from, to)));
    from = to;
  }
  decoder.end();
  const decoded = Hello.decode(frames[0]!.payload);
  say.step(
    `pushed it in ${cuts.length} chunks, got ${frames.length} frame back; connectionId = ${decoded.connectionId} (exact u64)`,
  );
  const verdict = validateHello(decoded, { peerPid: process.pid });
  say.step(`validateHello: ${verdict.ok ? 'ok' : verdict.reason}`);

  const bad = validateHello({ ...decoded, serviceName: 'Demo-KV' });
  if (!bad.ok) {
    const reply = HelloReply.encode({
      result: { case: 'refused', value: Refused.create({ code: bad.code, reason: bad.reason }) },
    });
    say.step(
      `a Hello for "Demo-KV" is refused: ${ErrorCode[bad.code]} — ${bad.reason} (${reply.length}-byte reply)`,
    );
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').replace(/(..)/g, '$1 ').trim();
}
