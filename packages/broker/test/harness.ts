// Shared by the broker's integration tests: service definitions for the
// echo-daemon fixture; temp dirs, fd counting and fixture processes come
// from @handoff/testkit and are re-exported so tests import one place.
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type ReadyProcess, spawnReady, tsxArgs } from '@handoff/testkit';
import pino from 'pino';

export { alive, killPid, openFds, quietFdCount, tempDir, tsxArgs } from '@handoff/testkit';

export const fixtures = join(import.meta.dirname, 'fixtures');
export const text = (s: string) => new TextEncoder().encode(s);
export const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** A pino logger at `level` whose JSON lines a test can read. */
export function capturedLog(level: pino.Level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** A service definition running the echo-daemon fixture with extra flags. */
export function echoService(
  name: string,
  extra: Record<string, unknown> = {},
  flags: string[] = [],
) {
  return {
    name,
    version: '1.0.0',
    command: process.execPath,
    args: [...tsxArgs, join(fixtures, 'echo-daemon.ts'), ...flags],
    readyTimeoutMs: 30_000,
    stopGraceMs: 2000,
    ...extra,
  };
}

/** A node process (a fixture's argv) once it printed `ready <pid>`. */
export function startProcess(args: string[]): Promise<ReadyProcess> {
  return spawnReady(process.execPath, args);
}
