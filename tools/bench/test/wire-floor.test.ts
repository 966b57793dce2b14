// The wire floor (bare-handoff.mjs wire-broker / wire-daemon) stands for the
// handoff of record done the cheapest right way; the throughput verdict
// leans on it, so it must be right. Driven here by our own client, which
// takes its Negotiated and relay as from any broker, and by hand as a
// broker that lies about the token.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectService } from '@handoff/broker/client';
import { FdSocket } from '@handoff/fdpass';
import {
  encodeFramed,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  HandoffOffer,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BareHandoff, startBareHandoff } from '../src/broker/bare-handoff.ts';
import { echoRequest, helloBytes, readFrames } from '../src/broker/probe-wire.mjs';

let dir: string;
let floor: BareHandoff;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wire-floor-'));
  // From source, as every test runs: a fresh clone has no dist/ yet.
  floor = await startBareHandoff(dir, {
    kind: 'wire',
    nodeArgs: ['--conditions=@handoff/source', '--import', 'tsx'],
  });
});
afterAll(async () => {
  await floor?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the wire floor', () => {
  it('hands connectService off: Negotiated, the accepted relay, then the daemon answers', async () => {
    for (let i = 0; i < 3; i++) {
      const { socket, route, negotiated } = await connectService('echo', {
        version: '1.0.0',
        brokerPath: floor.brokerPath,
        initialData: echoRequest,
        retry: false,
        endpointCache: false,
      });
      try {
        expect(route).toBe('handoff');
        expect(negotiated.handlePassedToken).toHaveLength(16);
        expect(negotiated.backendPipe).toBe(floor.directPath);
        // The bytes sent with the Hello come back from the daemon, then it echoes.
        socket.on('error', () => {});
        await readFrames(socket, 1);
        socket.write(echoRequest);
        await readFrames(socket, 1);
      } finally {
        socket.destroy();
      }
    }
  });

  it('answers nothing to a Hello that fails validation or to bytes that are no frame, and goes on', async () => {
    for (const bytes of [helloBytes('Not-A-Service'), Buffer.from([9, 1, 2, 3, 4, 5, 6])]) {
      const socket = connect({ path: floor.brokerPath });
      socket.on('error', () => {});
      socket.write(bytes);
      const got: Buffer[] = [];
      socket.on('data', (d: Buffer) => got.push(d));
      await once(socket, 'close');
      expect(Buffer.concat(got)).toHaveLength(0);
    }
    const { socket, route } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: floor.brokerPath,
      retry: false,
      endpointCache: false,
    });
    socket.destroy();
    expect(route).toBe('handoff');
  });

  it('never adopts a client whose offer carries another token, and acks the refusal', async () => {
    const channel = await FdSocket.connect(join(dir, 'wire-bare-handoff-control.sock'), {
      kind: 'seqpacket',
    });
    const [ours, theirs] = FdSocket.pair('stream');
    try {
      const sent = new Uint8Array(16).fill(1);
      const offer = encodeFramed(
        requestFrame({
          payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
          requestId: 7n,
          payload: HandoffOffer.encode({
            token: new Uint8Array(16).fill(2),
            serviceName: 'echo',
            correlationId: 7n,
            bufferedClientBytes: echoRequest,
          }),
        }),
      );
      const ack = once(channel, 'message');
      channel.write(Buffer.concat([sent, offer]), [theirs.fd], { transfer: true });
      const [{ data }] = (await ack) as [{ data: Buffer }];
      const decoded = HandoffAck.decode(tryDecodeFramed(data)!.frame.payload);
      expect(decoded).toMatchObject({ accepted: false, correlationId: 7n });
      // The daemon closed the fd it was given: our end sees EOF, no echo.
      const ended = await new Promise<{ data: number; end: boolean }>((resolve) => {
        let bytes = 0;
        ours.on('message', ({ data: d }: { data: Buffer }) => {
          bytes += d.length;
        });
        ours.on('end', () => resolve({ data: bytes, end: true }));
        ours.on('close', () => resolve({ data: bytes, end: true }));
      });
      expect(ended).toEqual({ data: 0, end: true });
    } finally {
      ours.close();
      channel.close();
    }
  });
});
