// The v1 messages (DESIGN §2.2) as plain TypeScript shapes, each paired
// with a value of the same name that creates, encodes and decodes it.
// Every field is always present after create/decode; 64-bit fields are
// `bigint`; bytes are Uint8Array views into the decoded buffer. The
// envelope, `Frame`, lives with its hand-written codec in frame-codec.ts.

import type { AdminReplyKind, AdminVerb, ErrorCode } from './enums.js';
import { defineMessage, type MessageType } from './message-type.js';
import { empty, generated, typeName } from './schema.js';

export interface Hello {
  clientMinProtocol: number;
  clientMaxProtocol: number;
  serviceName: string;
  wantedVersion: string;
  clientVersion: string;
  clientCapabilities: bigint;
  authToken: Uint8Array;
  requestId: string;
  connectionId: bigint;
  peerPid: number;
  clientLibName: string;
  clientLibVersion: string;
  peerAttestationNonce: Uint8Array;
  capabilityToken: Uint8Array;
  clientKeepaliveSecs: bigint;
}

export const Hello: MessageType<Hello> = defineMessage<Hello>({
  typeName: typeName('Hello'),
  generated: generated('Hello'),
  defaults: () => ({
    clientMinProtocol: 0,
    clientMaxProtocol: 0,
    serviceName: '',
    wantedVersion: '',
    clientVersion: '',
    clientCapabilities: 0n,
    authToken: empty(),
    requestId: '',
    connectionId: 0n,
    peerPid: 0,
    clientLibName: '',
    clientLibVersion: '',
    peerAttestationNonce: empty(),
    capabilityToken: empty(),
    clientKeepaliveSecs: 0n,
  }),
  u64: ['clientCapabilities', 'connectionId', 'clientKeepaliveSecs'],
});

export interface Negotiated {
  negotiatedProtocol: number;
  daemonVersion: string;
  backendPipe: string;
  warnings: string[];
  serverCapabilities: bigint;
  keepaliveIntervalSecs: bigint;
  handlePassedToken: Uint8Array;
  connectionId: bigint;
}

export const Negotiated: MessageType<Negotiated> = defineMessage<Negotiated>({
  typeName: typeName('Negotiated'),
  generated: generated('Negotiated'),
  defaults: () => ({
    negotiatedProtocol: 0,
    daemonVersion: '',
    backendPipe: '',
    warnings: [],
    serverCapabilities: 0n,
    keepaliveIntervalSecs: 0n,
    handlePassedToken: empty(),
    connectionId: 0n,
  }),
  u64: ['serverCapabilities', 'keepaliveIntervalSecs', 'connectionId'],
});

export interface Refused {
  reason: string;
  daemonMinProtocol: number;
  daemonMaxProtocol: number;
  code: ErrorCode;
  details: Record<string, string>;
  retryAfterMs: bigint;
}

export const Refused: MessageType<Refused> = defineMessage<Refused>({
  typeName: typeName('Refused'),
  generated: generated('Refused'),
  defaults: () => ({
    reason: '',
    daemonMinProtocol: 0,
    daemonMaxProtocol: 0,
    code: 0,
    details: {},
    retryAfterMs: 0n,
  }),
  u64: ['retryAfterMs'],
});

/** The oneof `result`: exactly one of the two, or neither. */
export type HelloResult =
  | { case: 'negotiated'; value: Negotiated }
  | { case: 'refused'; value: Refused }
  | { case: undefined; value?: undefined };

export interface HelloReply {
  result: HelloResult;
}

export const HelloReply: MessageType<HelloReply> = defineMessage<HelloReply>({
  typeName: typeName('HelloReply'),
  generated: generated('HelloReply'),
  defaults: () => ({ result: { case: undefined } }),
  toWire: (message) => {
    const result = message.result;
    if (result?.case === 'negotiated') return { negotiated: Negotiated.toWire(result.value) };
    if (result?.case === 'refused') return { refused: Refused.toWire(result.value) };
    return {};
  },
  fromWire: (decoded: { negotiated?: object | null; refused?: object | null }) => {
    if (decoded.negotiated) {
      return { result: { case: 'negotiated', value: Negotiated.fromWire(decoded.negotiated) } };
    }
    if (decoded.refused) {
      return { result: { case: 'refused', value: Refused.fromWire(decoded.refused) } };
    }
    return { result: { case: undefined } };
  },
});

export interface HandoffOffer {
  handleValue: bigint;
  token: Uint8Array;
  serviceName: string;
  correlationId: bigint;
  /** Ours (field 1000): client bytes the broker read past the Hello. */
  bufferedClientBytes: Uint8Array;
  /** Ours (field 1001): bytes the backend writes to the client first, if it accepts. */
  clientPrelude: Uint8Array;
}

export const HandoffOffer: MessageType<HandoffOffer> = defineMessage<HandoffOffer>({
  typeName: typeName('HandoffOffer'),
  generated: generated('HandoffOffer'),
  defaults: () => ({
    handleValue: 0n,
    token: empty(),
    serviceName: '',
    correlationId: 0n,
    bufferedClientBytes: empty(),
    clientPrelude: empty(),
  }),
  u64: ['handleValue', 'correlationId'],
});

export interface HandoffAck {
  token: Uint8Array;
  accepted: boolean;
  errorDetail: string;
  correlationId: bigint;
  /** Ours (field 1000): the backend wrote the offer's client_prelude to the client. */
  preludeWritten: boolean;
}

export const HandoffAck: MessageType<HandoffAck> = defineMessage<HandoffAck>({
  typeName: typeName('HandoffAck'),
  generated: generated('HandoffAck'),
  defaults: () => ({
    token: empty(),
    accepted: false,
    errorDetail: '',
    correlationId: 0n,
    preludeWritten: false,
  }),
  u64: ['correlationId'],
});

export interface Endpoint {
  namespaceId: string;
  path: string;
}

export const Endpoint: MessageType<Endpoint> = defineMessage<Endpoint>({
  typeName: typeName('Endpoint'),
  generated: generated('Endpoint'),
  defaults: () => ({ namespaceId: '', path: '' }),
});

/** Ours: a backend's control-channel registration (an Endpoint plus capabilities). */
export interface ChannelRegistration extends Endpoint {
  /** CHANNEL_CAP_* bits (field 1000). */
  channelCapabilities: bigint;
}

export const ChannelRegistration: MessageType<ChannelRegistration> =
  defineMessage<ChannelRegistration>({
    typeName: typeName('ChannelRegistration'),
    generated: generated('ChannelRegistration'),
    defaults: () => ({ namespaceId: '', path: '', channelCapabilities: 0n }),
    u64: ['channelCapabilities'],
  });

/**
 * Ours: named fds in the fd store (the fds travel in the same seqpacket
 * message, one per name, in order). `metadata[i]` belongs to `names[i]`;
 * a shorter list means empty blobs for the rest.
 */
export interface FdStoreEntries {
  names: string[];
  metadata: Uint8Array[];
}

export const FdStoreEntries: MessageType<FdStoreEntries> = defineMessage<FdStoreEntries>({
  typeName: typeName('FdStoreEntries'),
  generated: generated('FdStoreEntries'),
  defaults: () => ({ names: [], metadata: [] }),
});

export interface DaemonProcess {
  pid: number;
  exePath: string;
  /** Absent on the wire ⇒ undefined (a probe answer requires it). */
  ipcEndpoint: Endpoint | undefined;
  startedAtUnixMs: bigint;
  bootId: string;
  /** proto3 `optional`: undefined when not sent, 0 is a real value. */
  idleTimeoutSecs: number | undefined;
  exeHashAlgorithm: string;
  exeHash: Uint8Array;
  /** Ours (field 1000): the entry script of a Node daemon. */
  entryScriptPath: string;
  /** Ours (field 1001): BLAKE3 of the entry script. */
  entryScriptHash: Uint8Array;
}

export const DaemonProcess: MessageType<DaemonProcess> = defineMessage<DaemonProcess>({
  typeName: typeName('DaemonProcess'),
  generated: generated('DaemonProcess'),
  defaults: () => ({
    pid: 0,
    exePath: '',
    ipcEndpoint: undefined,
    startedAtUnixMs: 0n,
    bootId: '',
    idleTimeoutSecs: undefined,
    exeHashAlgorithm: '',
    exeHash: empty(),
    entryScriptPath: '',
    entryScriptHash: empty(),
  }),
  u64: ['startedAtUnixMs'],
  synthetic: ['_idleTimeoutSecs'],
  nested: { ipcEndpoint: Endpoint as MessageType<object> },
});

export interface AdminRequest {
  verb: AdminVerb;
  json: boolean;
  serviceName: string;
  outputPath: string;
  drainDeadlineMs: bigint;
  /** Ours (field 1000): UPGRADE's successor and RESTART's replacement ready deadline; 0n = default. */
  readyDeadlineMs: bigint;
}

export const AdminRequest: MessageType<AdminRequest> = defineMessage<AdminRequest>({
  typeName: typeName('AdminRequest'),
  generated: generated('AdminRequest'),
  defaults: () => ({
    verb: 0,
    json: false,
    serviceName: '',
    outputPath: '',
    drainDeadlineMs: 0n,
    readyDeadlineMs: 0n,
  }),
  u64: ['drainDeadlineMs', 'readyDeadlineMs'],
});

export interface AdminReply {
  kind: AdminReplyKind;
  body: string;
  exitCode: number;
  contentType: string;
}

export const AdminReply: MessageType<AdminReply> = defineMessage<AdminReply>({
  typeName: typeName('AdminReply'),
  generated: generated('AdminReply'),
  defaults: () => ({ kind: 0, body: '', exitCode: 0, contentType: '' }),
});
