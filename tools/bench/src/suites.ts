// The index of benchmark suites, by the name given on the command line.
import { backendSdkSuite } from './backend-sdk.bench.ts';
import { brokerSuite } from './broker.bench.ts';
import { brokerImportSuite } from './broker-import.bench.ts';
import { dispatcherSuite } from './dispatcher.bench.ts';
import { fdpassSuite } from './fdpass.bench.ts';
import { lifecycleSuite } from './lifecycle.bench.ts';
import { protocolSuite } from './protocol.bench.ts';

export const suites: Record<string, () => Promise<void>> = {
  protocol: protocolSuite,
  fdpass: fdpassSuite,
  'backend-sdk': backendSdkSuite,
  broker: brokerSuite,
  'broker-import': brokerImportSuite,
  dispatcher: dispatcherSuite,
  lifecycle: () => lifecycleSuite(),
  capacity: async () => (await import('./broker/capacity-suite.ts')).capacitySuite(),
  instructions: async () => (await import('./broker/instructions-suite.ts')).instructionsSuite(),
};
