// `doctor`'s crash report lines: the recent reports (src/crash-report.ts,
// @handoff/backend-sdk crash-report.ts) under the state directory — the
// flag's, else the running broker's (its STATUS), else the default — one
// WARN line each, newest first, or one PASS line when there are none.
import { readCrashReports } from '@handoff/backend-sdk';
import { defaultStateDir } from '../paths.js';
import type { CheckLine } from './output.js';
import { runningBrokerStateDir } from './state-dir.js';

/** Reports newer than this are listed. */
export const RECENT_CRASH_MS = 7 * 24 * 3600 * 1000;
/** At most this many are listed. */
export const LISTED_CRASHES = 5;

/** --state-dir, else the running broker's, else the default. */
export async function doctorStateDir(
  flag: string | undefined,
  socketPath: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<string> {
  if (flag !== undefined && flag !== '') return flag;
  return (await runningBrokerStateDir(socketPath, timeoutMs)) ?? defaultStateDir(env);
}

export function crashReportChecks(dir: string, now = Date.now()): CheckLine[] {
  const name = 'crash reports';
  const recent = readCrashReports(dir).filter((e) => now - e.report.t < RECENT_CRASH_MS);
  if (recent.length === 0)
    return [{ name, verdict: 'PASS', detail: `none in the last 7 days (${dir}/crash)` }];
  const lines: CheckLine[] = recent.slice(0, LISTED_CRASHES).map((e) => ({
    name,
    verdict: 'WARN',
    detail: `${e.report.program} pid ${e.report.pid} crashed at ${e.report.time}: ${oneLine(e.report.error.message)} (${e.path})`,
  }));
  if (recent.length > LISTED_CRASHES)
    lines.push({
      name,
      verdict: 'WARN',
      detail: `${recent.length - LISTED_CRASHES} more in ${dir}/crash`,
    });
  return lines;
}

function oneLine(text: string): string {
  const first = text.split('\n')[0] ?? '';
  return first.length > 200 ? `${first.slice(0, 200)}…` : first;
}
