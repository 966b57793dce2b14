// The v1 messages (DESIGN §2.2) as plain TypeScript shapes, each paired
// with a value of the same name that creates, encodes and decodes it.
// Every field is always present after create/decode; 64-bit fields are
// `bigint`; bytes are Uint8Array views into the decoded buffer. The
// envelope, `Frame`, lives with its hand-written codec in frame-codec.ts,
// the handshake (Hello, HelloReply) with its decoders in hello-codec.ts,
// and the handoff (HandoffOffer, HandoffAck) with its in handoff-codec.ts.

import type { AdminReplyKind, AdminVerb } from './enums.js';
import { defineMessage, type MessageType } from './message-type.js';
import { empty, generated, typeName } from './schema.js';

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
