// The RESTART admin verb: which daemons a request names, the limits on its
// deadlines, and its reply (old pid → new pid, took ms) as JSON and text,
// with RestartError's code and the replacement's last output on failure.
// The dispatcher (admin.ts) wraps the reply; the broker (broker-admin.ts)
// runs the restarts.
import type { AdminRequest } from '@handoff/protocol';
import { RestartError } from './rolling-restart.js';

/** One finished restart, as the reply reports it. */
export interface RestartReport {
  service: string;
  version: string;
  oldPid: number | null;
  newPid: number | null;
  endpoint: string;
  tookMs: number;
  drainMs: number;
}

/**
 * Restarts the running daemons of `serviceName` (every running version, or
 * the one of `version`), one after the other; rejects with RestartError at
 * the first that fails (`done` lists those before it), or with an error
 * the dispatcher answers as usage (AdminError SERVICE_UNKNOWN).
 */
export type RestartProvider = (
  target: { serviceName: string; version: string | undefined },
  options: { readyDeadlineMs: number | undefined; drainMs: number | undefined },
  done: RestartReport[],
) => Promise<void>;

export interface RestartVerbReply {
  exitCode: number;
  body: Record<string, unknown>;
  text: string;
}

/** A longer deadline is refused: it would look like a hung broker. */
const MAX_DEADLINE_MS = 10 * 60 * 1000;

/** `serviceName` is `name` or `name@version`; 0 deadlines are the definition's. */
export async function restartVerb(
  request: AdminRequest,
  provider: RestartProvider | undefined,
): Promise<RestartVerbReply> {
  if (!provider) return failure(2, 'NOT_SUPPORTED', 'RESTART is not supported by this broker');
  const [serviceName = '', version] = request.serviceName.split('@', 2);
  if (serviceName === '') return failure(2, 'USAGE', 'RESTART needs a service name');
  for (const [what, value] of [
    ['drain deadline', request.drainDeadlineMs],
    ['ready deadline', request.readyDeadlineMs],
  ] as const) {
    if (value > BigInt(MAX_DEADLINE_MS))
      return failure(2, 'USAGE', `${what} ${value} ms is over the ${MAX_DEADLINE_MS} ms maximum`);
  }
  const done: RestartReport[] = [];
  const restarted = () => done.map(reportJson);
  try {
    await provider(
      { serviceName, version: version || undefined },
      {
        readyDeadlineMs:
          request.readyDeadlineMs === 0n ? undefined : Number(request.readyDeadlineMs),
        drainMs: request.drainDeadlineMs === 0n ? undefined : Number(request.drainDeadlineMs),
      },
      done,
    );
  } catch (error) {
    if (!(error instanceof RestartError)) throw error;
    const reply = failure(1, error.code, error.message, {
      service: error.service,
      output_tail: error.outputTail,
      restarted: restarted(),
    });
    const tail = error.outputTail.trimEnd();
    reply.text = `${done.map(reportLine).join('')}restart failed (${error.code}): ${error.message}\n${
      tail && !error.message.includes(tail) ? `its last output:\n${tail}\n` : ''
    }`;
    return reply;
  }
  const message = done.map((r) => reportLine(r).trimEnd()).join('; ');
  return {
    exitCode: 0,
    body: { ok: true, code: 'RESTARTED', message, restarted: restarted() },
    text: done.map(reportLine).join(''),
  };
}

function failure(
  exitCode: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): RestartVerbReply {
  return {
    exitCode,
    body: { ok: false, code, message, ...extra, error: { code, message } },
    text: `${message}\n`,
  };
}

function reportLine(r: RestartReport): string {
  return `${r.service}@${r.version}: pid ${r.oldPid ?? '?'} → ${r.newPid ?? '?'} in ${r.tookMs} ms (the old one drains for up to ${r.drainMs} ms)\n`;
}

function reportJson(r: RestartReport): Record<string, unknown> {
  return {
    service: r.service,
    version: r.version,
    old_pid: r.oldPid,
    new_pid: r.newPid,
    endpoint: r.endpoint,
    took_ms: r.tookMs,
    drain_ms: r.drainMs,
  };
}
