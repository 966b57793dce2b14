// Public surface of @handoff/fdpass. Re-exports only.
export type { FdPassErrorCode, FdPassErrorOptions } from './errors.js';
export { FdPassError } from './errors.js';
export type { AcceptorListenOptions, AcceptorOptions } from './fd-acceptor.js';
export { FdAcceptor } from './fd-acceptor.js';
export type { AdoptListenerOptions, ListenOptions } from './fd-server.js';
export { FdServer } from './fd-server.js';
export type { WriteOptions } from './fd-socket.js';
export { FdSocket } from './fd-socket.js';
export type { ConnectOptions, FdSocketOptions, SocketKind } from './fd-socket-options.js';
export { defaultSocketKind } from './fd-socket-options.js';
export { memfdCreate } from './memfd.js';
export type { SocketFromFdOptions } from './node-interop.js';
export {
  closeFd,
  closeFds,
  duplicateFd,
  fdOf,
  serverFromFd,
  socketAdoptionPath,
  socketFromFd,
  writeNow,
} from './node-interop.js';
export type { PeerCredentials } from './peer-credentials.js';
export { peerCredentials } from './peer-credentials.js';
export { ProcessHandle, peerIsProcess } from './process-handle.js';
export type { SpawnedProcessEvents, SpawnProcessOptions, SpawnStdio } from './process-spawn.js';
export { SpawnedProcess, spawnProcess, spawnProcessAsync } from './process-spawn.js';
export type { ReceivedMessage } from './recv-batch.js';
export type { ForwardOptions, SessionForwarderOptions } from './session-forwarder.js';
export { SessionForwarder } from './session-forwarder.js';
export type { SessionReceiverOptions } from './session-receiver.js';
export { SessionReceiver } from './session-receiver.js';
export type { SessionAddress, SocketSession } from './session-wire.js';
export {
  DEFAULT_MAX_SESSION_DATA,
  decodeSessionAddress,
  MAX_SOCKADDR_SIZE,
} from './session-wire.js';
export { sendUnixDatagram } from './unix-datagram.js';
export type { OutgoingMessage } from './write-queue.js';
