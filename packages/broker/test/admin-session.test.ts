// AdminSession's answers to pipelined admin requests: in order, the answers
// of one round in one write, and bounded memory for a client that never
// reads. The router serves a real FdSocket pair; on a seqpacket pair every
// write the router makes is one message, so its writes can be counted from
// outside.
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
import { ADMIN_ANSWERS_PER_ROUND } from '../src/admin-session.js';
import { CLIENT_SOCKET_OPTIONS, serveClient } from '../src/hello-router.js';
import { adminRouterContext } from './admin-harness.js';

/** `count` requests (HEALTHZ unless told), numbered from `first`, as one buffer. */
function pipelined(count: number, verb = AdminVerb.HEALTHZ, first = 1): Buffer {
  const payload = AdminRequest.encode(AdminRequest.create({ verb, json: true }));
  return Buffer.concat(
    Array.from({ length: count }, (_, i) =>
      encodeFramed(
        requestFrame({
          payloadProtocol: ADMIN_PAYLOAD_PROTOCOL,
          requestId: BigInt(first + i),
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
  it('200 requests in one message: 200 answers, in order, one write per round', async () => {
    const { ids, exitCodes, messages } = await session(200, false);
    expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => BigInt(i + 1)));
    expect(exitCodes.every((code) => code === 0)).toBe(true);
    // One per request before answers were batched.
    expect(messages).toBe(Math.ceil(200 / ADMIN_ANSWERS_PER_ROUND));
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

  it('a client that pipelines requests and never reads costs bounded memory, and loses no answer', async () => {
    const before = openFds();
    const [ours, theirs] = FdSocket.pair('stream', CLIENT_SOCKET_OPTIONS);
    ours.on('error', () => {});
    ours.pause();
    serveClient(theirs, peerCredentials(theirs), adminRouterContext());
    // 16 writes of about 60 KB of STATUS requests, each answer some 18 times
    // the size of its request: before answers were bounded, the router had
    // 17 MB of them queued by the end of this loop.
    const perWrite = Math.floor(60_000 / pipelined(1, AdminVerb.STATUS).length);
    let sent = 0;
    let mostQueued = 0;
    for (let w = 0; w < 16; w++) {
      ours.write(pipelined(perWrite, AdminVerb.STATUS, sent + 1));
      sent += perWrite;
      for (let t = 0; t < 4; t++) {
        await new Promise((r) => setTimeout(r, 5));
        mostQueued = Math.max(mostQueued, theirs.writableLength);
      }
    }
    // The router holds a round of answers past its high-water mark, no more.
    expect(mostQueued).toBeGreaterThan(0);
    expect(mostQueued).toBeLessThan(1024 * 1024);
    // Now the client reads: every answer arrives, in order.
    const decoder = new FrameDecoder();
    let next = 1n;
    let inOrder = true;
    await new Promise<void>((resolve, reject) => {
      const giveUp = setTimeout(() => reject(new Error(`${next - 1n} of ${sent} answers`)), 20_000);
      ours.on('message', ({ data }: ReceivedMessage) => {
        for (const frame of decoder.push(data)) {
          if (frame.requestId !== next) inOrder = false;
          next++;
        }
        if (next > BigInt(sent)) {
          clearTimeout(giveUp);
          resolve();
        }
      });
      ours.resume();
    });
    expect(inOrder).toBe(true);
    expect(next - 1n).toBe(BigInt(sent));
    ours.close();
    theirs.close();
    expect(openFds()).toBe(before);
  }, 30_000);
});
