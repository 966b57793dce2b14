// Reading the event journal back (`handoff-broker events`): its files
// oldest first (events.jsonl.N … .1, then events.jsonl), filtered by time
// and service, the last N; and following new events across rotations until
// stopped. Lines that are not events (torn, garbled, hostile) are skipped.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { BrokerError } from '../errors.js';
import {
  type FilePosition,
  FollowedFile,
  followUntilAborted,
  readAllLines,
  readRestOf,
} from '../jsonl-follow.js';
import { decodeEvent, eventsFilePath, type JournalEvent } from './event.js';

export type EventsErrorCode = 'NO_EVENTS' | 'READ_FAILED' | 'BAD_SINCE';

/** No journal under a state directory, it cannot be read, or a bad --since. */
export class EventsError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:EventsError';
  override readonly name = 'EventsError';
  declare readonly code: EventsErrorCode;
  constructor(code: EventsErrorCode, message: string) {
    super(code, message);
  }
}

export interface EventFilter {
  /** Only events at or after this time (Unix ms). */
  sinceMs?: number;
  service?: string;
}

/** Which events pass `filter`. */
export function matches(event: JournalEvent, filter: EventFilter): boolean {
  if (filter.sinceMs !== undefined && event.t < filter.sinceMs) return false;
  if (filter.service !== undefined && event.service !== filter.service) return false;
  return true;
}

/**
 * `--since`: a duration back from `now` (`90s`, `15m`, `2h`, `1d`, `500ms`)
 * or an ISO 8601 time. EventsError BAD_SINCE otherwise.
 */
export function parseSince(text: string, now = Date.now()): number {
  const duration = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (duration) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
      duration[2] as 'ms' | 's' | 'm' | 'h' | 'd'
    ];
    return now - Number(duration[1]) * unit;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = Date.parse(text);
    if (Number.isFinite(at)) return at;
  }
  throw new EventsError(
    'BAD_SINCE',
    `--since takes a duration (90s, 15m, 2h, 1d) or an ISO 8601 time, not ${JSON.stringify(text)}`,
  );
}

/** The journal's files under `stateDir`, oldest first; [] when there is none. */
export async function journalFiles(stateDir: string): Promise<string[]> {
  const current = eventsFilePath(stateDir);
  let names: string[];
  try {
    names = await readdir(dirname(current));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new EventsError('READ_FAILED', `cannot read ${stateDir}: ${(error as Error).message}`);
  }
  const base = basename(current);
  const rotated = names
    .map((n) => (n.startsWith(`${base}.`) ? Number(n.slice(base.length + 1)) : Number.NaN))
    .filter((n) => Number.isSafeInteger(n) && n > 0)
    .sort((a, b) => b - a)
    .map((n) => `${current}.${n}`);
  return [...rotated, ...(names.includes(base) ? [current] : [])];
}

/** Where reading stopped: following starts there. */
export type JournalPosition = FilePosition;

/**
 * The last `count` events passing `filter`, oldest first, and where the
 * current file ended. EventsError NO_EVENTS when there is no journal at all.
 */
export async function readEvents(
  stateDir: string,
  filter: EventFilter,
  count: number,
): Promise<{ events: JournalEvent[]; position: JournalPosition | null }> {
  const files = await journalFiles(stateDir);
  if (files.length === 0)
    throw new EventsError(
      'NO_EVENTS',
      `no event journal in ${stateDir} (no broker has run with this state directory)`,
    );
  const events: JournalEvent[] = [];
  let position: JournalPosition | null = null;
  for (const file of files) {
    let data: Buffer;
    try {
      // A journal is at most a few MiB (maxBytes × files): read whole.
      const info = await stat(file);
      data = await readFile(file);
      if (file === eventsFilePath(stateDir)) position = { ino: info.ino, size: data.length };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new EventsError('READ_FAILED', `cannot read ${file}: ${(error as Error).message}`);
    }
    // A last line without its newline is a write in progress: left for following.
    const end = data.lastIndexOf(10) + 1;
    if (position && file === eventsFilePath(stateDir)) position.size = end;
    for (const line of data.subarray(0, end).toString('utf8').split('\n')) {
      const event = decodeEvent(line);
      if (event && matches(event, filter)) events.push(event);
    }
  }
  return { events: count <= 0 ? [] : events.slice(-count), position };
}

/**
 * Calls `onEvent` for each event passing `filter` appended from `from` on
 * (the start of the file when null), across rotations (the rest of the
 * rotated file is read first), until `signal` aborts; every fd closed then.
 */
export async function followEvents(
  stateDir: string,
  filter: EventFilter,
  onEvent: (event: JournalEvent) => void,
  signal: AbortSignal,
  from: JournalPosition | null,
  pollMs = 200,
): Promise<void> {
  const onLine = (line: string) => {
    const event = decodeEvent(line);
    if (event && matches(event, filter)) onEvent(event);
  };
  const file = new FollowedFile(eventsFilePath(stateDir), onLine);
  const readRotatedSince = async (ino: number) => {
    for (const rotated of (await rotatedAfter(stateDir, ino)).newer)
      await readAllLines(rotated, onLine);
  };
  try {
    await file.open(from ?? 'start');
    if (from !== null && (!file.isOpen || file.ino !== from.ino)) {
      // Rotated since the read: the rest of the file that was read, then any between.
      const { same } = await rotatedAfter(stateDir, from.ino);
      if (same !== null) await readRestOf(same, from, onLine);
      await readRotatedSince(from.ino);
    }
    // Rotated more than once between two looks: the files between, too.
    await followUntilAborted(signal, pollMs, () => file.poll(() => readRotatedSince(file.ino)));
  } finally {
    await file.close();
  }
}

/**
 * The rotated file with inode `ino` (null when it is gone) and the rotated
 * files newer than it, oldest first (all of them when it is gone: rotated
 * out, it was the oldest).
 */
async function rotatedAfter(
  stateDir: string,
  ino: number,
): Promise<{ same: string | null; newer: string[] }> {
  const current = eventsFilePath(stateDir);
  const rotated = (await journalFiles(stateDir).catch(() => [])).filter((f) => f !== current);
  const inodes = await Promise.all(
    rotated.map((f) =>
      stat(f).then(
        (i) => i.ino,
        () => -1,
      ),
    ),
  );
  const at = inodes.indexOf(ino);
  return { same: at === -1 ? null : rotated[at]!, newer: rotated.slice(at + 1) };
}
