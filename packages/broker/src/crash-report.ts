// The broker's crash reports (`serve`): the SDK's report (crash-report.ts
// in @handoff/backend-sdk) named handoff-broker, with the broker's version
// and its last journal events; and the test-only hook that makes a serving
// broker throw, so that tests can see a report appear.
import { installCrashReports } from '@handoff/backend-sdk';
import type { EventJournal } from './events/journal.js';
import { brokerPackageVersion } from './package-version.js';

/** Journal events a crash report carries. */
export const CRASH_REPORT_EVENTS = 50;

/**
 * Test-only: `HANDOFF_TEST_CRASH=uncaught` (or `rejection`) makes `serve`
 * throw once it serves. Not documented for users; named so nobody sets it by accident.
 */
export const TEST_CRASH_ENV = 'HANDOFF_TEST_CRASH';

/**
 * Installs the broker's crash reports under `<stateDir>/crash`; `journal()`
 * is asked at crash time (null before the broker started).
 */
export function installBrokerCrashReports(
  stateDir: string,
  journal: () => EventJournal | null,
): () => void {
  return installCrashReports({
    program: 'handoff-broker',
    stateDir,
    packageName: '@handoff/broker',
    packageVersion: brokerPackageVersion() ?? 'unknown',
    extra: () => ({ events: journal()?.recent(CRASH_REPORT_EVENTS) ?? [] }),
  });
}

/** Throws (on the next turn, uncaught) when the test hook asks for it. */
export function crashIfTestAsks(env: NodeJS.ProcessEnv): void {
  const how = env[TEST_CRASH_ENV];
  if (how === 'uncaught')
    setImmediate(() => {
      throw new Error(`test crash (${TEST_CRASH_ENV}=uncaught)`);
    });
  else if (how === 'rejection')
    void Promise.reject(new Error(`test crash (${TEST_CRASH_ENV}=rejection)`));
}
