// The servers a standalone probe spawns (hello-probe, handoff-probe,
// offer-throughput-probe): waiting for each one's "ready" line, and
// stopping them when the probe exits, however it exits.
import { createInterface } from 'node:readline';

/**
 * Resolves once a child printed its "ready" line; every other line of its
 * stdout, before and after, goes to our stderr, so a child run with flags
 * that print (--trace-gc, say) neither fools the wait nor stalls on a pipe
 * nobody reads. Rejects if the child exits first.
 */
export function childReady(child) {
  return new Promise((resolve, reject) => {
    let ready = false;
    const onExit = (code, signal) =>
      reject(new Error(`${child.spawnfile} exited (${code ?? signal}) before it was ready`));
    child.once('exit', onExit);
    createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on(
      'line',
      (line) => {
        if (!ready && line === 'ready') {
          ready = true;
          child.off('exit', onExit);
          resolve();
        } else process.stderr.write(`${line}\n`);
      },
    );
  });
}

/**
 * SIGTERM to every child still running when this process exits: a probe
 * that fails (a connect refused, say) must not leave its servers behind,
 * and SIGTERM lets a broker stop its daemons too. `children` may grow after
 * the call.
 */
export function stopOnExit(children) {
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  });
}
