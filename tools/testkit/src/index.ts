// The test kit's public surface: re-exports only. Each file owns one kind of
// helper; see README.md. fd-ownership-guard is a setup file, not exported here.
export {
  alive,
  childPids,
  isZombie,
  killPid,
  type ProcStat,
  processesMentioning,
  type ReadyProcess,
  readProcStat,
  type SpawnReadyOptions,
  spawnReady,
  tsxArgs,
} from './children.js';
export { type DatagramReceiver, startDatagramReceiver } from './datagram-receiver.js';
export { arbEvenCuts, arbFraction, arbMutatedEvenly } from './even-edits.js';
export { openFdSet, openFds, quietFdCount } from './fds.js';
export { type FixtureOptions, startFixture } from './fixture-process.js';
export {
  bundlePeerForUser,
  type ForeignUserPeer,
  foreignUserUnavailable,
  NOBODY,
} from './foreign-user-peer.js';
export {
  type RecordedSession,
  readCorpus,
  recordingRelay,
  trapUncaught,
  waitUntil,
  writeCorpus,
} from './fuzz-harness.js';
export { fdText, isOpenFd, memfdWith } from './memfds.js';
export {
  arbCuts,
  arbMutated,
  type CorpusFile,
  chunk,
  fromHex,
  type Mutated,
  toHex,
} from './mutations.js';
export { tcpNoDelay } from './tcp-options.js';
export { type TempDir, tempDir } from './temp-dir.js';
export { TestBroker, type TestBrokerOptions } from './test-broker.js';
export { TestDaemon, type TestDaemonOptions } from './test-daemon.js';
