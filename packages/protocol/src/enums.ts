// The v1 enums as numeric TypeScript enums. Values are the wire numbers
// (DESIGN §2.2); names drop the proto prefixes that proto3 scoping forced
// on the schema (AdminVerb.UNSPECIFIED is ADMIN_VERB_UNSPECIFIED there).
// Decoding keeps unknown numbers as they are: proto3 enums are open.

export enum FrameKind {
  REQUEST = 0,
  RESPONSE = 1,
  EVENT = 2,
  CANCEL = 3,
}

export enum PayloadEncoding {
  NONE = 0,
  ZSTD = 1,
  SNAPPY = 2,
  LZ4 = 3,
}

export enum ErrorCode {
  UNSPECIFIED = 0,
  VERSION_UNSUPPORTED = 1,
  SERVICE_UNKNOWN = 2,
  BACKEND_SPAWN_FAILED = 3,
  RATE_LIMITED = 4,
  SHUTTING_DOWN = 5,
  PEER_REJECTED = 6,
  INTERNAL = 7,
  VERSION_BLOCKED = 8,
  FD_PRESSURE = 9,
}

export enum AdminVerb {
  UNSPECIFIED = 0,
  STATUS = 1,
  DUMP = 2,
  LIST_INSTANCES = 3,
  HEALTHZ = 4,
  READYZ = 5,
  BACKEND_HEALTH = 6,
  CONFIG = 7,
  DIAGNOSE = 8,
  METRICS = 9,
  SHUTDOWN = 21,
  /** Ours: hand the broker over to a successor process (zero-downtime upgrade). */
  UPGRADE = 1000,
  /** Ours: replace a service's daemon without refusing a client (rolling restart). */
  RESTART = 1001,
  /** Ours: one endpoint-cache session of a service, reported so the broker still counts it. */
  CACHE_SESSION = 1002,
}

export enum AdminReplyKind {
  TEXT = 0,
  JSON = 1,
  OPENMETRICS = 2,
}
