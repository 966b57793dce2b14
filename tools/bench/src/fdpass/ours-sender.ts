// Our case as a program, so each timed round gets a fresh pair of processes
// exactly as the C and Python baselines do (a fresh parent and forked child
// per round). With one pair kept for the whole suite, where the kernel
// placed that pair on the 2 cores was drawn once per run, and the suite's
// ratio flipped between ~0.78 and ~1.1 from run to run (RESULTS.md,
// 2026-12-04 17:00); drawing it per round, like C, makes the medians
// comparable.
//
// Usage: ours-sender.ts <dir> <messages> <fds_per_message>
// Prints one line like c/fdbench.c: {"fds","messages","fds_per_message","seconds"}.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startOursPair } from './ours.ts';

/**
 * Untimed messages before the round. C warms with 1000; a fresh Node pair
 * also needs its send and receive paths optimized by the JIT first.
 */
const WARMUP_MESSAGES = 16_384;

const [dir, messagesArg, fdsArg] = process.argv.slice(2);
const messages = Number(messagesArg);
const fdsPerMessage = Number(fdsArg);
if (
  dir === undefined ||
  !Number.isInteger(messages) ||
  messages < 1 ||
  !Number.isInteger(fdsPerMessage) ||
  fdsPerMessage < 0 ||
  fdsPerMessage > 253
) {
  console.error('Usage: ours-sender.ts <dir> <messages> <fds_per_message 0..253>');
  process.exit(2);
}

// A private directory per round: the socket path is never shared with a
// round whose receiver is still exiting.
const roundDir = mkdtempSync(join(dir, 'round-'));
const pair = await startOursPair(roundDir);
try {
  await pair.round(Math.min(messages, WARMUP_MESSAGES), fdsPerMessage);
  const seconds = await pair.round(messages, fdsPerMessage);
  console.log(
    JSON.stringify({
      fds: messages * fdsPerMessage,
      messages,
      fds_per_message: fdsPerMessage,
      seconds,
    }),
  );
} finally {
  await pair.close();
  rmSync(roundDir, { recursive: true, force: true });
}
