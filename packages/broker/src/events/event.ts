// What one lifecycle event is — a JSON line of `<stateDir>/events.jsonl` —
// and where the journal's files live. Shared by the writer (journal.ts),
// the reader (reader.ts, `handoff-broker events`) and the crash reports, so
// all three agree; a line that is not an event decodes to null.
import { join } from 'node:path';

/** Every kind the broker records (README, "Event journal"). */
export const EVENT_KINDS = [
  'broker_started',
  'broker_stopping',
  'spawn',
  'spawn_failed',
  'ready',
  'exit',
  'probe_failed',
  'fallback',
  'refused',
  'restart',
  'upgrade',
  'config_reload',
] as const;

export type EventKind = (typeof EVENT_KINDS)[number];

/** One journal line: `{"t":…,"kind":…,…}`; only `t` and `kind` are always present. */
export interface JournalEvent {
  /** When it happened (Unix ms). */
  t: number;
  kind: EventKind;
  /** The service it concerns (absent for the broker's own events). */
  service?: string;
  version?: string;
  /** The daemon's pid (or the broker's, for upgrade and broker events). */
  pid?: number;
  /** Exit status, for `exit`. */
  status?: number;
  /** Terminating signal, for `exit`. */
  signal?: string;
  /** A refusal's ErrorCode name, a reload's "ok"/"failed", a restart's outcome. */
  code?: string;
  /** What happened, in words. */
  message?: string;
}

/** The journal's current file; rotated ones add `.1` (the newest), `.2`, … */
export function eventsFilePath(stateDir: string): string {
  return join(stateDir, 'events.jsonl');
}

const KINDS: ReadonlySet<string> = new Set(EVENT_KINDS);
const STRING_FIELDS = ['service', 'version', 'signal', 'code', 'message'] as const;
const NUMBER_FIELDS = ['pid', 'status'] as const;

/** One event as a line of the file (with its newline). */
export function encodeEvent(event: JournalEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/**
 * A file line back into an event; null for anything that is not one (a
 * torn write, a line someone else wrote). Unknown keys are dropped and
 * known ones type-checked, so a hostile line cannot smuggle in shapes.
 */
export function decodeEvent(text: string): JournalEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const raw = value as Record<string, unknown>;
  if (typeof raw.t !== 'number' || !Number.isFinite(raw.t)) return null;
  if (typeof raw.kind !== 'string' || !KINDS.has(raw.kind)) return null;
  const event: JournalEvent = { t: raw.t, kind: raw.kind as EventKind };
  for (const key of STRING_FIELDS) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'string') return null;
    event[key] = v;
  }
  for (const key of NUMBER_FIELDS) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) return null;
    event[key] = v;
  }
  return event;
}

/** `2026-12-03T07:01:19.123Z exit demo-kv@1.0.0 pid 4242 status 1: process exited`. */
export function eventLine(e: JournalEvent): string {
  const parts = [new Date(e.t).toISOString(), e.kind];
  if (e.service !== undefined)
    parts.push(e.version === undefined ? e.service : `${e.service}@${e.version}`);
  if (e.pid !== undefined) parts.push(`pid ${e.pid}`);
  if (e.status !== undefined) parts.push(`status ${e.status}`);
  if (e.signal !== undefined) parts.push(`signal ${e.signal}`);
  if (e.code !== undefined) parts.push(e.code);
  return `${parts.join(' ')}${e.message === undefined ? '' : `: ${e.message}`}\n`;
}
