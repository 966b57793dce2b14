// `npm run bench -- protocol`: the framing codec's hot paths, each against
// a baseline measured in the same run.
//   encode: encodeFramed (bigint facade + header) vs the bare protobufjs
//           static encoder on the same frame (Long for 64-bit fields, no header),
//           alternating rounds (protocol/encode-pair.ts), then the same in
//           fresh processes (HANDOFF_BENCH_FRESH_PROCESSES, default 10; 0 skips)
//   decode: tryDecodeFramed vs the bare protobufjs static decoder
//   hello:  Hello.decode and HelloReply.decode (hand-written) vs the same
//           messages through the generated decoder (decodeGenerated: the
//           path they took before, same results)
//   stream: FrameDecoder on one 16 MiB frame pushed in 64 KiB chunks vs a
//           single 16 MiB Buffer.copy (the floor for getting the bytes in)
import {
  CAP_HANDLE_PASSING,
  encodeFramed,
  FrameDecoder,
  Hello,
  HelloReply,
  MAX_FRAME_BYTES,
  Negotiated,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import { running_process } from '../../../packages/protocol/src/generated/broker_v1.js';
import { emit, line, timeSync } from './measure.ts';
import { CHILD_FLAG, ENCODE_TARGET, freshEncodeCase } from './protocol/encode-fresh.ts';
import { type GeneratedEncoder, measureEncodePair, PAIRS } from './protocol/encode-pair.ts';

const generated = running_process.broker.v1.Frame;
// The same class, typed as the encode pair takes it (Long for 64-bit fields).
const generatedEncoder = generated as unknown as GeneratedEncoder;

export async function protocolSuite(): Promise<void> {
  const payload = new Uint8Array(64).fill(0x5a);
  const frame = requestFrame({
    payloadProtocol: 0xf001,
    payload,
    requestId: 123_456_789n,
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  });

  let sink = 0;
  const encode = measureEncodePair(generatedEncoder);
  emit({
    ...line('protocol.encode_framed.small', encode.ours, 'protobufjs.static.encode', encode.base, {
      payload_bytes: 64,
      ratio_of: `median of ${PAIRS} alternating round pairs`,
      target_ratio: ENCODE_TARGET,
      meets_target: encode.ratio >= ENCODE_TARGET,
    }),
    ratio: Number(encode.ratio.toFixed(2)),
  });
  await freshEncodeCase();

  const wire = encodeFramed(frame);
  const body = wire.subarray(5);
  const decodeOurs = timeSync(() => {
    sink += tryDecodeFramed(wire)!.consumed;
  });
  const decodeBase = timeSync(() => {
    sink += generated.decode(body).payload.length;
  });
  emit(
    line('protocol.decode_framed.small', decodeOurs, 'protobufjs.static.decode', decodeBase, {
      payload_bytes: 64,
    }),
  );

  // The two decodes every connect makes, with what a client of ours sends
  // and what a broker answers on the reconnect route.
  const hello = Hello.encode({
    clientMinProtocol: 1,
    clientMaxProtocol: 1,
    serviceName: 'echo-plain',
    wantedVersion: '1.0.0',
    clientVersion: '1.0.0',
    clientCapabilities: CAP_HANDLE_PASSING,
    peerPid: 4242,
    clientLibName: '@handoff/broker',
    clientLibVersion: '0.9.0',
  });
  const reply = HelloReply.encode({
    result: {
      case: 'negotiated',
      value: Negotiated.create({
        negotiatedProtocol: 1,
        daemonVersion: '1.0.0',
        backendPipe: '/run/user/1000/handoff/services/echo-plain/daemon.sock',
        serverCapabilities: CAP_HANDLE_PASSING,
        connectionId: 123_456n,
      }),
    },
  });
  const handshake = [
    ['protocol.decode.hello', Hello, hello],
    ['protocol.decode.hello_reply', HelloReply, reply],
  ] as const;
  for (const [bench, type, bytes] of handshake) {
    const ours = timeSync(() => {
      sink += Object.keys(type.decode(bytes)).length;
    });
    const base = timeSync(() => {
      sink += Object.keys(type.decodeGenerated(bytes)).length;
    });
    emit(
      line(bench, ours, 'generated.decode', base, {
        body_bytes: bytes.length,
        target: 'none: the hand-written decoder against the generated one it replaced, on record',
      }),
    );
  }

  // One frame just under the cap, as a socket would deliver it.
  const big = encodeFramed({
    payload: new Uint8Array(MAX_FRAME_BYTES - 16).fill(1),
    requestId: 1n,
  });
  const chunk = 64 * 1024;
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < big.length; at += chunk) chunks.push(big.subarray(at, at + chunk));
  const streamOurs = timeSync(
    () => {
      const decoder = new FrameDecoder();
      for (const c of chunks) for (const f of decoder.push(c)) sink += f.payload.length;
    },
    { rounds: 9, minRoundMs: 200 },
  );
  const source = Buffer.from(big.buffer, big.byteOffset, big.byteLength);
  const streamBase = timeSync(
    () => {
      const target = Buffer.allocUnsafe(source.length);
      sink += source.copy(target);
    },
    { rounds: 9, minRoundMs: 200 },
  );
  emit(
    line(
      'protocol.frame_decoder.16MiB_in_64KiB_chunks',
      streamOurs,
      'buffer.copy.16MiB',
      streamBase,
      {
        frame_bytes: big.length,
        chunk_bytes: chunk,
        time_vs_baseline: Number((streamBase.opsPerSec / streamOurs.opsPerSec).toFixed(2)),
      },
    ),
  );
  if (sink === 42) console.error('unreachable');
}

// Run as a script with CHILD_FLAG: one fresh process of the fresh_processes
// case (protocol/encode-fresh.ts) — the encode pair alone, as one JSON line.
if (process.argv.includes(CHILD_FLAG)) {
  const r = measureEncodePair(generatedEncoder);
  process.stdout.write(
    `${JSON.stringify({ ours: r.ours.opsPerSec, base: r.base.opsPerSec, ratio: r.ratio })}\n`,
  );
}
