import { createServer, type Server } from 'node:net';
import {
  type DaemonProcess,
  encodeFramed,
  FrameDecoder,
  FrameKind,
  IDENTITY_PROBE_PAYLOAD_PROTOCOL,
  responseFrame,
} from '@handoff/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DaemonIdentity, type DaemonServer, probeDaemon, serveDaemon } from '../src/index.js';
import { identityFor, tempDir } from './harness.js';

const tmp = tempDir('probe');
let identity: DaemonIdentity;
const servers: (DaemonServer | Server)[] = [];

beforeAll(async () => {
  identity = await identityFor(tmp.path('placeholder.sock'));
}, 60_000);
afterAll(async () => {
  for (const s of servers)
    await new Promise<void>((r) => ('adopt' in s ? s.close().then(() => r()) : s.close(() => r())));
  tmp.remove();
});

/** Serves a daemon whose probe answers claim `patch` over the true identity. */
async function daemonClaiming(
  name: string,
  patch: (p: DaemonProcess) => Partial<DaemonProcess> = () => ({}),
) {
  const endpoint = tmp.path(`${name}.sock`);
  const truth = { ...identity.process, ipcEndpoint: { namespaceId: '', path: endpoint } };
  const claimed: DaemonIdentity = { ...identity, process: { ...truth, ...patch(truth) } };
  const server = await serveDaemon({
    endpoint,
    identity: claimed,
    payloadProtocols: [],
    onRequest: () => undefined,
  });
  servers.push(server);
  return endpoint;
}

/** A raw server that answers the probe challenge with `answer(frame)`. */
async function rawServer(
  name: string,
  answer: (socket: import('node:net').Socket, frame: import('@handoff/protocol').Frame) => void,
) {
  const endpoint = tmp.path(`${name}.sock`);
  const server = createServer((socket) => {
    const decoder = new FrameDecoder();
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk)) answer(socket, frame);
    });
  });
  await new Promise<void>((r) => server.listen(endpoint, r));
  servers.push(server);
  return endpoint;
}

describe('probeDaemon', () => {
  it('verifies a truthful daemon and reports the round trip', async () => {
    const endpoint = await daemonClaiming('truthful');
    const verified = await probeDaemon(endpoint, {
      pid: process.pid,
      exePath: identity.process.exePath,
      exeHash: identity.process.exeHash,
    });
    expect(verified.identity.pid).toBe(process.pid);
    expect(verified.peer.pid).toBe(process.pid);
    expect(verified.legacyExeSha256).toStrictEqual(identity.legacyExeSha256);
    expect(verified.roundTripMs).toBeGreaterThan(0);
    expect(verified.roundTripMs).toBeLessThan(500);
  });

  it('fails each tampered identity field with its own code', async () => {
    const cases: [
      string,
      (p: DaemonProcess) => Partial<DaemonProcess>,
      string,
      string | undefined,
    ][] = [
      ['claims-pid', () => ({ pid: 1 }), 'PEER_CREDENTIALS', 'pid'],
      ['claims-boot', () => ({ bootId: 'another-boot' }), 'IDENTITY_MISMATCH', 'bootId'],
      [
        'claims-start',
        (p) => ({ startedAtUnixMs: p.startedAtUnixMs - 3_600_000n }),
        'START_TIME',
        'startedAtUnixMs',
      ],
      [
        'claims-endpoint',
        () => ({ ipcEndpoint: { namespaceId: '', path: '/elsewhere.sock' } }),
        'ENDPOINT_MISMATCH',
        'ipcEndpoint',
      ],
      [
        'claims-algorithm',
        () => ({ exeHashAlgorithm: 'sha256' }),
        'MALFORMED_PAYLOAD',
        'exeHashAlgorithm',
      ],
      [
        'claims-short-hash',
        () => ({ exeHash: new Uint8Array(31) }),
        'MALFORMED_PAYLOAD',
        'exeHash',
      ],
      [
        'claims-no-endpoint',
        () => ({ ipcEndpoint: undefined }),
        'MALFORMED_PAYLOAD',
        'ipcEndpoint',
      ],
    ];
    for (const [name, patch, code, field] of cases) {
      const endpoint = await daemonClaiming(name, patch);
      await expect(probeDaemon(endpoint), name).rejects.toMatchObject({ code, field });
    }
  });

  it('fails expectations the daemon does not meet', async () => {
    const endpoint = await daemonClaiming('expectations');
    await expect(probeDaemon(endpoint, { pid: process.pid + 1 })).rejects.toMatchObject({
      code: 'IDENTITY_MISMATCH',
      field: 'pid',
    });
    await expect(probeDaemon(endpoint, { exePath: '/bin/false' })).rejects.toMatchObject({
      code: 'IDENTITY_MISMATCH',
      field: 'exePath',
    });
    await expect(probeDaemon(endpoint, { exeHash: new Uint8Array(32) })).rejects.toMatchObject({
      code: 'IDENTITY_MISMATCH',
      field: 'exeHash',
    });
    await expect(probeDaemon(endpoint, { uid: 12345 })).rejects.toMatchObject({
      code: 'PEER_CREDENTIALS',
      field: 'uid',
    });
  });

  it('checks kind, protocol, request id and nonce of the answer', async () => {
    const good = (f: import('@handoff/protocol').Frame) => {
      const payload = new Uint8Array(f.payload.length + 4);
      payload.set(f.payload);
      return responseFrame(f, { payload });
    };
    const wrongKind = await rawServer('kind', (s, f) =>
      s.write(encodeFramed({ ...good(f), kind: FrameKind.EVENT })),
    );
    await expect(probeDaemon(wrongKind)).rejects.toMatchObject({
      code: 'UNEXPECTED_FRAME',
      field: 'kind',
    });
    const wrongProtocol = await rawServer('protocol', (s, f) =>
      s.write(encodeFramed({ ...good(f), payloadProtocol: 0xf000 })),
    );
    await expect(probeDaemon(wrongProtocol)).rejects.toMatchObject({
      code: 'UNEXPECTED_FRAME',
      field: 'payloadProtocol',
    });
    const wrongId = await rawServer('id', (s, f) =>
      s.write(encodeFramed({ ...good(f), requestId: f.requestId ^ 1n })),
    );
    await expect(probeDaemon(wrongId)).rejects.toMatchObject({
      code: 'UNEXPECTED_FRAME',
      field: 'requestId',
    });
    const wrongNonce = await rawServer('nonce', (s, f) =>
      s.write(encodeFramed(responseFrame(f, { payload: new Uint8Array(40) }))),
    );
    await expect(probeDaemon(wrongNonce)).rejects.toMatchObject({ code: 'NONCE_MISMATCH' });
    const garbage = await rawServer('garbage', (s, f) =>
      s.write(encodeFramed(responseFrame(f, { payload: new Uint8Array([...f.payload, 0x0f]) }))),
    );
    await expect(probeDaemon(garbage)).rejects.toMatchObject({ code: 'MALFORMED_PAYLOAD' });
    const notFramed = await rawServer('not-framed', (s) =>
      s.write('HTTP/1.1 400 Bad Request\r\n\r\n'),
    );
    await expect(probeDaemon(notFramed)).rejects.toMatchObject({ code: 'UNEXPECTED_FRAME' });
  });

  it('sends a 32-byte nonce whose first 8 bytes, little-endian, are the request id', async () => {
    let seen: import('@handoff/protocol').Frame | undefined;
    const endpoint = await rawServer('shape', (s, f) => {
      seen = f;
      s.destroy();
    });
    await expect(probeDaemon(endpoint)).rejects.toMatchObject({ code: 'CLOSED' });
    expect(seen!.kind).toBe(FrameKind.REQUEST);
    expect(seen!.payloadProtocol).toBe(IDENTITY_PROBE_PAYLOAD_PROTOCOL);
    expect(seen!.payload).toHaveLength(32);
    expect(seen!.requestId).toBe(
      new DataView(seen!.payload.buffer, seen!.payload.byteOffset).getBigUint64(0, true),
    );
  });

  it('fails at once when the peer closes early, and on time when it stays silent', async () => {
    const closer = await rawServer('closer', (s) => s.destroy());
    const t0 = performance.now();
    await expect(probeDaemon(closer, {}, { timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'CLOSED',
    });
    expect(performance.now() - t0).toBeLessThan(500);
    const silent = await rawServer('silent', () => {});
    const t1 = performance.now();
    await expect(probeDaemon(silent, {}, { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    expect(performance.now() - t1).toBeGreaterThanOrEqual(190);
    await expect(probeDaemon(tmp.path('missing.sock'))).rejects.toMatchObject({ code: 'CONNECT' });
  });
});
