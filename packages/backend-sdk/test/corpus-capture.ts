import { type Frame, FrameDecoder, Frame as FrameType } from '@handoff/protocol';
import { recordingRelay, waitUntil } from '@handoff/testkit';
import { toHex } from '@handoff/testkit/mutations';
import { FrameClient, type ProbeError, probeDaemon, serveDaemon } from '../src/index.js';
import { identityFor, tempDir } from './harness.js';

export { readCorpus, writeCorpus } from '@handoff/testkit';

export const SERVED_PROTOCOL = 0x7001;
export const protocolCorpusDir = new URL('../../protocol/test/fixtures/corpus/', import.meta.url);

const concat = (chunks: Buffer[]) => new Uint8Array(Buffer.concat(chunks));

/**
 * One framed session each way, through a relay that records every byte:
 * three requests (one with trace context, one empty), then an identity
 * probe on a connection of its own.
 */
export async function captureFramedSessions(): Promise<Record<string, Uint8Array>> {
  const tmp = tempDir('corpus');
  const endpoint = tmp.path('daemon.sock');
  const daemon = await serveDaemon({
    endpoint,
    identity: await identityFor(endpoint),
    payloadProtocols: [SERVED_PROTOCOL],
    onRequest: (frame) => frame.payload,
  });
  const relayPath = tmp.path('relay.sock');
  const relay = await recordingRelay(relayPath, endpoint);
  const { sessions } = relay;
  try {
    const client = await FrameClient.connect(relayPath);
    await client.request(SERVED_PROTOCOL, new TextEncoder().encode('hello, daemon'));
    await client.request(SERVED_PROTOCOL, new Uint8Array(300).fill(0x5a), {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'vendor=value',
    });
    await client.request(SERVED_PROTOCOL, new Uint8Array(0));
    client.close();
    // The daemon names its own socket, not the relay's: the probe's verdict
    // is ENDPOINT_MISMATCH, after both directions went through the relay.
    await probeDaemon(relayPath, {}, { timeoutMs: 5000 }).catch((error: ProbeError) => {
      if (error.code !== 'ENDPOINT_MISMATCH') throw error;
    });
    await waitUntil(() => sessions.length === 2 && sessions.every((s) => s.down.length > 0));
  } finally {
    relay.close();
    await daemon.close({ deadlineMs: 100 });
    tmp.remove();
  }
  return {
    'client-requests': concat(sessions[0]!.up),
    'daemon-responses': concat(sessions[0]!.down),
    'probe-request': concat(sessions[1]!.up),
    'probe-answer': concat(sessions[1]!.down),
  };
}

/** Frames of a byte stream, for comparing captures whose random fields differ. */
export function framesOf(bytes: Uint8Array): Frame[] {
  return new FrameDecoder().push(bytes);
}

/** What must not change between captures: everything but named random fields. */
export function frameShape(frame: Frame, volatile: readonly (keyof Frame)[] = []) {
  const copy: Record<string, unknown> = { ...FrameType.create(), ...frame };
  for (const key of volatile) copy[key] = '<volatile>';
  copy.payload = volatile.includes('payload') ? '<volatile>' : toHex(frame.payload);
  return copy;
}
