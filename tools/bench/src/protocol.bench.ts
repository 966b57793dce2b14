// `npm run bench -- protocol`: the framing codec's hot paths, each against
// a baseline measured in the same run.
//   encode: encodeFramed (bigint facade + header) vs the bare protobufjs
//           static encoder on the same frame (Long for 64-bit fields, no header),
//           alternating rounds (protocol/encode-pair.ts), then the same in
//           fresh processes (HANDOFF_BENCH_FRESH_PROCESSES, default 10; 0 skips)
//   decode: tryDecodeFramed vs the bare protobufjs static decoder
//   stream: FrameDecoder on one 16 MiB frame pushed in 64 KiB chunks vs a
//           single 16 MiB Buffer.copy (the floor for getting the bytes in)
import {
  encodeFramed,
  FrameDecoder,
  MAX_FRAME_BYTES,
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
