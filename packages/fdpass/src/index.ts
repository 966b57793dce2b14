// Public surface of @handoff/fdpass. Re-exports only.
export type { FdPassErrorCode, FdPassErrorOptions } from './errors.js';
export { FdPassError } from './errors.js';
export type { AcceptorListenOptions, AcceptorOptions } from './fd-acceptor.js';
export { FdAcceptor } from './fd-acceptor.js';
export type { ListenOptions } from './fd-server.js';
export { FdServer } from './fd-server.js';
export type {
  ConnectOptions,
  FdSocketOptions,
  ReceivedMessage,
  SocketKind,
  WriteOptions,
} from './fd-socket.js';
export { defaultSocketKind, FdSocket } from './fd-socket.js';
export type { SocketFromFdOptions } from './node-interop.js';
export {
  closeFd,
  closeFds,
  duplicateFd,
  fdOf,
  serverFromFd,
  socketFromFd,
} from './node-interop.js';
export type { PeerCredentials } from './peer-credentials.js';
export { peerCredentials } from './peer-credentials.js';
export type {
  ForwardOptions,
  SessionAddress,
  SessionForwarderOptions,
  SessionReceiverOptions,
  SocketSession,
} from './socket-session.js';
export {
  DEFAULT_MAX_SESSION_DATA,
  decodeSessionAddress,
  MAX_SOCKADDR_SIZE,
  SessionForwarder,
  SessionReceiver,
} from './socket-session.js';
