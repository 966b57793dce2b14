// `npm start`: a narrated run of what the packages do today, on real
// sockets and processes. Exits 0 when every step worked.
import { narrator } from './narrate.ts';
import { protocolTour } from './protocol-tour.ts';

const say = narrator();
process.stdout.write('handoff tour — packages for local daemons on Linux\n');
protocolTour(say);
process.stdout.write('\nAll steps passed.\n');
