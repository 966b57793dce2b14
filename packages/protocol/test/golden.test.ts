// Golden bytes: the .bin files were produced by Google's protoc from the
// .txtpb inputs (scripts/make-golden.sh), never by the encoder under test.
// Each expected object below is written by hand from the same .txtpb.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AdminReply,
  AdminReplyKind,
  AdminRequest,
  AdminVerb,
  ChannelRegistration,
  DaemonProcess,
  Endpoint,
  ErrorCode,
  FdStoreEntries,
  Frame,
  FrameKind,
  HandoffAck,
  HandoffOffer,
  Hello,
  HelloReply,
  type MessageType,
  PayloadEncoding,
} from '../src/index.js';

const dir = join(import.meta.dirname, '..', 'golden');
const golden = (name: string) => new Uint8Array(readFileSync(join(dir, `${name}.bin`)));
const bytes = (...values: number[]) => new Uint8Array(values);
const text = (s: string) => new TextEncoder().encode(s);
const token = bytes(
  0x00,
  0x11,
  0x22,
  0x33,
  0x44,
  0x55,
  0x66,
  0x77,
  0x88,
  0x99,
  0xaa,
  0xbb,
  0xcc,
  0xdd,
  0xee,
  0xff,
);
const U64_MAX = 18446744073709551615n;

interface Case {
  name: string;
  type: MessageType<object>;
  expected: object;
}

const cases: Case[] = [
  {
    name: 'Frame.full',
    type: Frame as MessageType<object>,
    expected: {
      envelopeVersion: 1,
      kind: FrameKind.RESPONSE,
      payloadProtocol: 0xb232,
      payload: bytes(0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff),
      requestId: U64_MAX,
      payloadEncoding: PayloadEncoding.LZ4,
      deadlineUnixMs: 1n << 63n,
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'congo=t61rcWkgMzE',
    },
  },
  {
    name: 'Frame.empty',
    type: Frame as MessageType<object>,
    expected: {
      envelopeVersion: 0,
      kind: FrameKind.REQUEST,
      payloadProtocol: 0,
      payload: bytes(),
      requestId: 0n,
      payloadEncoding: PayloadEncoding.NONE,
      deadlineUnixMs: 0n,
      traceparent: '',
      tracestate: '',
    },
  },
  {
    name: 'Frame.request',
    type: Frame as MessageType<object>,
    expected: {
      envelopeVersion: 1,
      kind: FrameKind.REQUEST,
      payloadProtocol: 0xf001,
      payload: text('hello'),
      requestId: 1n,
      payloadEncoding: PayloadEncoding.NONE,
      deadlineUnixMs: 0n,
      traceparent: '',
      tracestate: '',
    },
  },
  {
    name: 'Hello.full',
    type: Hello as MessageType<object>,
    expected: {
      clientMinProtocol: 1,
      clientMaxProtocol: 4294967295,
      serviceName: 'demo-kv',
      wantedVersion: '1.2.3-rc.1',
      clientVersion: '0.9.0',
      clientCapabilities: 1n,
      authToken: bytes(0xde, 0xad, 0xbe, 0xef),
      requestId: 'req-1',
      connectionId: U64_MAX,
      peerPid: 4194304,
      clientLibName: '@handoff/broker',
      clientLibVersion: '0.1.0',
      peerAttestationNonce: bytes(1, 2, 3, 4, 5, 6, 7, 8),
      capabilityToken: bytes(0xff),
      clientKeepaliveSecs: 4294967296n,
    },
  },
  {
    name: 'HelloReply.negotiated',
    type: HelloReply as MessageType<object>,
    expected: {
      result: {
        case: 'negotiated',
        value: {
          negotiatedProtocol: 1,
          daemonVersion: '1.2.3',
          backendPipe: '/run/user/1000/handoff/demo-kv.sock',
          warnings: ['first', 'second'],
          serverCapabilities: 1n,
          keepaliveIntervalSecs: 30n,
          handlePassedToken: token,
          connectionId: 9007199254740993n,
        },
      },
    },
  },
  {
    name: 'HelloReply.refused',
    type: HelloReply as MessageType<object>,
    expected: {
      result: {
        case: 'refused',
        value: {
          reason: 'spawn budget exhausted',
          daemonMinProtocol: 1,
          daemonMaxProtocol: 1,
          code: ErrorCode.RATE_LIMITED,
          details: { service: 'demo-kv' },
          retryAfterMs: U64_MAX,
        },
      },
    },
  },
  {
    name: 'HandoffOffer.full',
    type: HandoffOffer as MessageType<object>,
    expected: {
      handleValue: 0n,
      token,
      serviceName: 'demo-kv',
      correlationId: U64_MAX,
      bufferedClientBytes: text('GET k\n'),
      clientPrelude: text('\x05prelude'),
    },
  },
  {
    name: 'HandoffAck.full',
    type: HandoffAck as MessageType<object>,
    expected: {
      token,
      accepted: true,
      errorDetail: 'none',
      correlationId: 4294967297n,
      preludeWritten: true,
    },
  },
  {
    name: 'Endpoint.full',
    type: Endpoint as MessageType<object>,
    expected: { namespaceId: 'uid-1000', path: '/run/user/1000/handoff/broker.sock' },
  },
  {
    name: 'ChannelRegistration.full',
    type: ChannelRegistration as MessageType<object>,
    expected: {
      namespaceId: 'uid-1000',
      path: '/run/user/1000/handoff/demo-kv.sock',
      channelCapabilities: U64_MAX,
    },
  },
  {
    name: 'DaemonProcess.full',
    type: DaemonProcess as MessageType<object>,
    expected: {
      pid: 4294967295,
      exePath: '/usr/bin/node',
      ipcEndpoint: { namespaceId: 'uid-1000', path: '/run/user/1000/handoff/demo-kv.sock' },
      startedAtUnixMs: 1763700000000n,
      bootId: '6d1f2b9e-33a8-4c1e-9d27-0c1d5d0e8a11',
      idleTimeoutSecs: 0,
      exeHashAlgorithm: 'blake3',
      exeHash: new Uint8Array(Array.from({ length: 32 }, (_, i) => i)),
      entryScriptPath: '/srv/daemon/main.js',
      entryScriptHash: new Uint8Array(Array.from({ length: 32 }, (_, i) => 0xff - i)),
    },
  },
  {
    name: 'DaemonProcess.no-idle',
    type: DaemonProcess as MessageType<object>,
    expected: {
      pid: 1234,
      exePath: '/usr/bin/node',
      ipcEndpoint: { namespaceId: '', path: '/tmp/d.sock' },
      startedAtUnixMs: 1n,
      bootId: '',
      idleTimeoutSecs: undefined,
      exeHashAlgorithm: '',
      exeHash: bytes(),
      entryScriptPath: '',
      entryScriptHash: bytes(),
    },
  },
  {
    name: 'AdminRequest.full',
    type: AdminRequest as MessageType<object>,
    expected: {
      verb: AdminVerb.SHUTDOWN,
      json: true,
      serviceName: 'demo-kv',
      outputPath: '/tmp/dump.json',
      drainDeadlineMs: U64_MAX,
      readyDeadlineMs: 2500n,
    },
  },
  {
    name: 'AdminRequest.restart',
    type: AdminRequest as MessageType<object>,
    expected: {
      verb: AdminVerb.RESTART,
      json: false,
      serviceName: 'demo-kv',
      outputPath: '',
      drainDeadlineMs: 30000n,
      readyDeadlineMs: 0n,
    },
  },
  {
    name: 'FdStoreEntries.full',
    type: FdStoreEntries as MessageType<object>,
    expected: {
      names: ['line:1', 'state', 'listener'],
      metadata: [new Uint8Array([1, 2, 3]), bytes()],
    },
  },
  {
    name: 'AdminReply.full',
    type: AdminReply as MessageType<object>,
    expected: {
      kind: AdminReplyKind.OPENMETRICS,
      body: '# TYPE uptime_seconds gauge\nuptime_seconds 1.5\n# EOF\n',
      exitCode: 4294967295,
      contentType: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
    },
  },
];

describe('golden encodings produced by protoc', () => {
  for (const { name, type, expected } of cases) {
    it(`${name}: encodes to exactly protoc's bytes`, () => {
      expect(Buffer.from(type.encode(expected)).toString('hex')).toBe(
        Buffer.from(golden(name)).toString('hex'),
      );
    });
    it(`${name}: decodes protoc's bytes field by field`, () => {
      const decoded = type.decode(golden(name)) as Record<string, unknown>;
      for (const [field, value] of Object.entries(expected)) {
        expect(decoded[field], field).toStrictEqual(value);
      }
      expect(Object.keys(decoded).sort()).toEqual(Object.keys(expected).sort());
    });
  }

  it('covers every .txtpb input', () => {
    const inputs = execFileSync('ls', [dir])
      .toString()
      .split('\n')
      .filter((f) => f.endsWith('.txtpb'));
    expect(inputs.map((f) => f.replace(/\.txtpb$/, '')).sort()).toEqual(
      cases.map((c) => c.name).sort(),
    );
  });

  // The committed bytes must still be what protoc makes of the inputs, so a
  // hand-edited .bin (or a schema change without `npm run golden`) fails.
  // protoc is installed by .ci/run; in CI its absence is a failure.
  const protoc = spawnSync('protoc', ['--version']).status === 0;
  it.runIf(protoc || process.env.CI)('the .bin files are current protoc output', () => {
    const script = join(import.meta.dirname, '..', 'scripts', 'make-golden.sh');
    const run = spawnSync('bash', [script, '--check'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
