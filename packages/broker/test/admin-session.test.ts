// AdminSession's answers to pipelined admin requests: in order, and the
// answers made in one turn of the event loop in one write. The router serves
// a real FdSocket pair; on a seqpacket pair every write the router makes is
// one message, so the number of its writes can be counted from outside.
import { FdSocket, peerCredentials, type ReceivedMessage } from '@handoff/fdpass';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminReply,
  AdminRequest,
  AdminVerb,
  encodeFramed,
  FrameDecoder,
  FrameKind,
  requestFrame,
} from '@handoff/protocol';
import { openFds } from '@handoff/testkit';
import { describe, expect, it } from 'vitest';
import { CLIENT_SOCKET_OPTIONS, serveClient } from '../src/hello-router.js';
import { adminRouterContext } from './admin-harness.js';

/** `count` HEALTHZ requests, numbered from 1, as one buffer. */
function pipelined(count: number): Uint8Array {
  const payload = AdminRequest.encode(AdminRequest.create({ verb: AdminVerb.HEALTHZ }));
  return Buffer.concat(
    Array.from({ length: count }, (_, i) =>
      encodeFramed(
        requestFrame({
          payloadProtocol: ADMIN_PAYLOAD_PROTOCOL,
          requestId: BigInt(i + 1),
          payload,
        }),
      ),
    ),
  );
}

/**
 * Sends `count` pipelined requests in one message (then half-closes if
 * asked) and collects the router's messages until `count` answers and, when
 * half-closed, its end. Gives up after 3 s.
 */
async function session(count: number, halfClose: boolean) {
  const [ours, theirs] = FdSocket.pair('seqpacket', CLIENT_SOCKET_OPTIONS);
  const decoder = new FrameDecoder();
  const ids: bigint[] = [];
  const exitCodes: number[] = [];
  let messages = 0;
  let ended = false;
  let wake = () => {};
  ours.on('message', ({ data }: ReceivedMessage) => {
    messages++;
    for (const frame of decoder.push(data)) {
      expect(frame.kind).toBe(FrameKind.RESPONSE);
      ids.push(frame.requestId);
      exitCodes.push(AdminReply.decode(frame.payload).exitCode);
    }
    wake();
  });
  ours.on('end', () => {
    ended = true;
    wake();
  });
  ours.on('error', () => {});
  serveClient(theirs, peerCredentials(theirs), adminRouterContext());
  ours.write(pipelined(count));
  if (halfClose) ours.end();
  const done = () => ids.length >= count && (!halfClose || ended);
  const giveUp = setTimeout(() => wake(), 3000);
  const started = Date.now();
  while (!done() && Date.now() - started < 3000) await new Promise<void>((r) => (wake = r));
  clearTimeout(giveUp);
  const routerClosed = theirs.closed;
  ours.close();
  theirs.close();
  return { ids, exitCodes, messages, ended, routerClosed };
}

describe('admin sessions answer pipelined requests', () => {
  it('200 requests in one message: 200 answers, in order, in one write', async () => {
    const { ids, exitCodes, messages } = await session(200, false);
    expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => BigInt(i + 1)));
    expect(exitCodes.every((code) => code === 0)).toBe(true);
    // One per request before answers were batched; the batch is one write.
    expect(messages).toBe(1);
  });

  it('a client that half-closes behind its requests gets every answer, then the close', async () => {
    const before = openFds();
    const { ids, messages, ended, routerClosed } = await session(50, true);
    expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i + 1)));
    expect(messages).toBe(1);
    expect(ended).toBe(true);
    expect(routerClosed).toBe(true);
    expect(openFds()).toBe(before);
  });
});
