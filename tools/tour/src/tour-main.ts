// `npm run tour`: a narrated run of what each package does, on real
// sockets and processes. Exits 0 when every step worked.
import { brokerTour } from './broker-tour.ts';
import { fdpassTour } from './fdpass-tour.ts';
import { narrator } from './narrate.ts';
import { protocolTour } from './protocol-tour.ts';

const say = narrator();
process.stdout.write('handoff tour — packages for local daemons on Linux\n');
try {
  protocolTour(say);
  await fdpassTour(say);
  await brokerTour(say);
  process.stdout.write('\nAll steps passed.\n');
} catch (error) {
  process.stderr.write(`\ntour failed: ${(error as Error).stack ?? error}\n`);
  process.exitCode = 1;
}
