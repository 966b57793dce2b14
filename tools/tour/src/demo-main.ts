// `npm run demo`: runs the scripted demo (demo.ts) and exits 0 when every
// step did what it showed.
import { runDemo } from './demo.ts';
import { narrator } from './narrate.ts';

process.stdout.write(
  'handoff demo — a broker, a daemon it starts on demand, two wires, one socket\n',
);
try {
  await runDemo(narrator());
  process.stdout.write('\nDemo complete: every step checked.\n');
} catch (error) {
  process.stderr.write(`\ndemo failed: ${(error as Error).stack ?? error}\n`);
  process.exitCode = 1;
}
