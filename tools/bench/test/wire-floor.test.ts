// The wire floor (bare-handoff.mjs wire-broker / wire-daemon) stands for the
// handoff of record done the cheapest right way; the throughput verdict
// leans on it, and the handoff latency puts it on record, so it must be
// right. Driven here by our own client, which takes its Negotiated and relay
// as from any broker, and by hand as a broker that lies about the token. The
// Hello floor (wire-hello), which the Hello verdict leans on, the same way:
// our client follows its Negotiated to the daemon, and its bytes are the
// encoder's.
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
  HelloReply,
  Negotiated,
  PROTOCOL_VERSION,
  requestFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BareHandoff, HelloFloor } from '../src/broker/bare-handoff.ts';
import { echoRequest, helloBytes, readFrames } from '../src/broker/probe-wire.mjs';
import { type Floors, startFloors } from './floors.ts';

let dir: string;
let floors: Floors | undefined;
let floor: BareHandoff;
let helloFloor: HelloFloor;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wire-floor-'));
  floors = await startFloors(dir);
  ({ floor, helloFloor } = floors);
});
afterAll(async () => {
  await floors?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Our client through the floor at `brokerPath`: one attempt, never the endpoint cache. */
const connectVia = (brokerPath: string, service: string, initialData?: Uint8Array) =>
  connectService(service, {
    version: '1.0.0',
    brokerPath,
    retry: false,
    endpointCache: false,
    ...(initialData ? { initialData } : {}),
  });

/** Everything the server at `path` answers `bytes` before it closes. */
async function answerTo(path: string, bytes: Uint8Array): Promise<Buffer> {
  const socket = connect({ path });
  socket.on('error', () => {});
  socket.write(bytes);
  const got: Buffer[] = [];
  socket.on('data', (d: Buffer) => got.push(d));
  await once(socket, 'close');
  return Buffer.concat(got);
}

describe('the Hello floor', () => {
  it('sends connectService to the daemon it names (the reconnect route), numbering each connection', async () => {
    const { socket, route, negotiated } = await connectVia(
      helloFloor.path,
      'echo-plain',
      echoRequest,
    );
    try {
      expect(route).toBe('reconnect');
      expect(negotiated.backendPipe).toBe(floor.directPath);
      socket.on('error', () => {});
      await readFrames(socket, 1);
    } finally {
      socket.destroy();
    }
    // Byte for byte the encoder's HelloReply, the connection id counting up.
    const ids: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const got = tryDecodeFramed(await answerTo(helloFloor.path, helloBytes('echo-plain')))!;
      expect(got.frame.requestId).toBe(1n);
      const reply = HelloReply.decode(got.frame.payload);
      expect(reply.result.case).toBe('negotiated');
      const value = reply.result.value as Negotiated;
      ids.push(value.connectionId);
      const expected = HelloReply.encode({
        result: {
          case: 'negotiated',
          value: Negotiated.create({
            negotiatedProtocol: PROTOCOL_VERSION,
            daemonVersion: '1.0.0',
            backendPipe: floor.directPath,
            connectionId: value.connectionId,
          }),
        },
      });
      expect(Buffer.from(got.frame.payload)).toEqual(Buffer.from(expected));
    }
    expect(ids[1]).toBe(ids[0]! + 1n);
    expect(ids[2]).toBe(ids[1]! + 1n);
  });

  it('answers nothing to an unknown service, an invalid Hello or bytes that are no frame, and goes on', async () => {
    for (const bytes of [
      helloBytes('echo'),
      helloBytes('Not-A-Service'),
      Buffer.from([9, 1, 2, 3, 4, 5, 6]),
    ])
      expect(await answerTo(helloFloor.path, bytes)).toHaveLength(0);
    const answer = tryDecodeFramed(await answerTo(helloFloor.path, helloBytes('echo-plain')));
    expect(HelloReply.decode(answer!.frame.payload).result.case).toBe('negotiated');
  });
});

describe('the wire floor', () => {
  it('hands connectService off: Negotiated, the accepted relay, then the daemon answers', async () => {
    for (let i = 0; i < 3; i++) {
      const { socket, route, negotiated } = await connectVia(floor.brokerPath, 'echo', echoRequest);
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
    for (const bytes of [helloBytes('Not-A-Service'), Buffer.from([9, 1, 2, 3, 4, 5, 6])])
      expect(await answerTo(floor.brokerPath, bytes)).toHaveLength(0);
    const { socket, route } = await connectVia(floor.brokerPath, 'echo');
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
