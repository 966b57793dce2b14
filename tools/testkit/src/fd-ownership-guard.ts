// Vitest setup file for every project: a test fails when, while it ran, Node
// reported that fs closed a descriptor fs never opened ("closed but not
// opened in unmanaged mode"): an fd closed by something other than its owner.
import { afterAll, afterEach } from 'vitest';

const UNMANAGED_CLOSE = /File descriptor \d+ closed but not opened in unmanaged mode/g;

// Node tracks fs-opened fds only inside worker threads. A vitest 'threads'
// worker gets the warning as a process 'warning' event (and Node's default
// handler also prints it); a Worker that a test starts only reaches this
// thread as text piped into process.stderr. Both are kept, and a printed
// line that merely repeats an event is not counted twice.
const fromEvents: string[] = [];
const fromText: string[] = [];

function matches(text: string): string[] {
  return Array.from(text.matchAll(UNMANAGED_CLOSE), (m) => m[0]);
}

function onWarning(warning: Error): void {
  fromEvents.push(...matches(warning.message));
}

process.on('warning', onWarning);
const originalWrite = process.stderr.write;
process.stderr.write = function write(
  this: NodeJS.WriteStream,
  chunk: unknown,
  ...rest: unknown[]
) {
  if (typeof chunk === 'string') fromText.push(...matches(chunk));
  else if (chunk instanceof Uint8Array) fromText.push(...matches(Buffer.from(chunk).toString()));
  return (originalWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
} as typeof process.stderr.write;

function takeSeen(): string[] {
  const found = fromEvents.splice(0);
  const printedOnly = fromText.splice(0);
  for (const message of found) {
    const i = printedOnly.indexOf(message);
    if (i >= 0) printedOnly.splice(i, 1);
  }
  return [...found, ...printedOnly];
}

function failOnSeen(where: string): void {
  const found = takeSeen();
  if (found.length === 0) return;
  throw new Error(
    `fd ownership: ${found.length} descriptor(s) were closed with fs.close/closeSync although fs did not open them, ${where}: ${found.join('; ')}. ` +
      'Close fds received over SCM_RIGHTS or made by the native addon with closeFd/closeFds from @handoff/fdpass, and give each fd exactly one owner.',
  );
}

// process.emitWarning delivers on the next tick, after the promise chain
// that ends a test: wait one tick so a warning is charged to its own test.
const nextTick = process.nextTick;
const tick = () => new Promise<void>((resolve) => nextTick(resolve));

afterEach(async () => {
  await tick();
  failOnSeen('during this test');
});

afterAll(async () => {
  await tick();
  process.off('warning', onWarning);
  process.stderr.write = originalWrite;
  failOnSeen('after the last test of this file');
});
