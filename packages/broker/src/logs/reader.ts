// Reading a service's daemon logs back (`handoff-broker logs`): which files
// belong to it (every version, or one; rotated ones `.N` oldest first), the
// last N records across them, and following new records as they are
// written — across rotations and truncations — until stopped.
import { type FileHandle, open, readdir } from 'node:fs/promises';
import { BrokerError } from '../errors.js';
import {
  type FilePosition,
  FollowedFile,
  followUntilAborted,
  readRestOf,
} from '../jsonl-follow.js';
import { decodeRecord, type LogRecord, logsDir } from './record.js';

export type LogsErrorCode = 'NO_LOGS' | 'READ_FAILED';

/** Nothing to read for a service, or its files cannot be read. */
export class LogsError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:LogsError';
  override readonly name = 'LogsError';
  declare readonly code: LogsErrorCode;
  constructor(code: LogsErrorCode, message: string) {
    super(code, message);
  }
}

/** One version's log files, oldest first (`x.log.N` … `x.log.1`, then `x.log`). */
export interface VersionLogs {
  version: string;
  /** The current file's path (`x.log`), present or not. */
  current: string;
  files: string[];
}

/** A semver version (what definitions allow): tells `a-1.0.0.log` from `a-b-1.0.0.log`. */
const VERSION = String.raw`\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?`;

/** The log files of `service` (of `version` only, when given) under `<stateDir>/logs`. */
export async function findLogFiles(
  stateDir: string,
  service: string,
  version?: string,
): Promise<VersionLogs[]> {
  const dir = logsDir(stateDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new LogsError('READ_FAILED', `cannot read ${dir}: ${(error as Error).message}`);
  }
  const pattern = new RegExp(`^${escapeRegExp(service)}-(${VERSION})\\.log(?:\\.(\\d+))?$`);
  const byVersion = new Map<string, { n: number; name: string }[]>();
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match) continue;
    const v = match[1]!;
    if (version !== undefined && v !== version) continue;
    const list = byVersion.get(v) ?? [];
    list.push({ n: match[2] === undefined ? 0 : Number(match[2]), name });
    byVersion.set(v, list);
  }
  return [...byVersion.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([v, list]) => ({
      version: v,
      current: `${dir}/${service}-${v}.log`,
      files: list.sort((a, b) => b.n - a.n).map((f) => `${dir}/${f.name}`),
    }));
}

/** The last `count` records of `service` across its files (all versions merged by time). */
export async function readLastRecords(
  stateDir: string,
  service: string,
  count: number,
  version?: string,
): Promise<{ versions: VersionLogs[]; records: LogRecord[]; positions: FollowPositions }> {
  const versions = await findLogFiles(stateDir, service, version);
  if (versions.length === 0) {
    throw new LogsError(
      'NO_LOGS',
      `no logs of ${version === undefined ? `service "${service}"` : `${service}@${version}`} in ${logsDir(stateDir)}` +
        ' (unknown service, or none of its daemons has written anything under this state directory)',
    );
  }
  const positions: FollowPositions = new Map();
  const perVersion = await Promise.all(
    versions.map((v) => lastOfFiles(v.files, count, v.current, positions)),
  );
  // Stable merge by time: records of one version are already in order.
  const records = perVersion.flat().sort((a, b) => a.t - b.t);
  return { versions, records: count === 0 ? [] : records.slice(-count), positions };
}

/** Where a read of the last records stopped, per current file: following starts there. */
export type FollowPositions = Map<string, FilePosition>;

/** The last `count` records of `files` (oldest file first), reading newest first. */
async function lastOfFiles(
  files: string[],
  count: number,
  current: string,
  positions: FollowPositions,
): Promise<LogRecord[]> {
  const collected: LogRecord[][] = [];
  let have = 0;
  for (let i = files.length - 1; i >= 0; i--) {
    // The current file is always opened: its size is where following starts.
    if (have >= count && files[i] !== current) break;
    const records = await lastOfFile(files[i]!, count - have, (at) => {
      if (files[i] === current) positions.set(current, at);
    });
    collected.unshift(records);
    have += records.length;
  }
  return collected.flat();
}

const CHUNK = 64 * 1024;

/** The last `count` records of one file, reading backwards in chunks (a rotated-away file is empty). */
async function lastOfFile(
  path: string,
  count: number,
  onOpen: (at: { ino: number; size: number }) => void,
): Promise<LogRecord[]> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new LogsError('READ_FAILED', `cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    const info = await handle.stat();
    onOpen({ ino: info.ino, size: info.size });
    let position = info.size;
    let tail = Buffer.alloc(0);
    const records: LogRecord[] = [];
    while (position > 0 && records.length < count) {
      const length = Math.min(CHUNK, position);
      position -= length;
      const chunk = Buffer.alloc(length);
      await handle.read(chunk, 0, length, position);
      tail = Buffer.concat([chunk, tail]);
      // Whole lines only, except at the file's start.
      const cut = position === 0 ? 0 : tail.indexOf(10) + 1;
      if (cut === 0 && position > 0) continue;
      const lines = tail.subarray(cut).toString('utf8').split('\n');
      tail = tail.subarray(0, cut);
      const decoded = lines.map(decodeRecord).filter((r): r is LogRecord => r !== null);
      records.unshift(...decoded);
    }
    return records.slice(-count);
  } finally {
    await handle.close();
  }
}

/**
 * Calls `onRecord` for each record appended to `service`'s current files
 * from now on (new versions' files included when no version is given),
 * across rotations (the rest of the old file is read first) and
 * truncation, until `signal` aborts. Resolves then, with every fd closed.
 */
export async function followRecords(
  stateDir: string,
  service: string,
  onRecord: (record: LogRecord) => void,
  signal: AbortSignal,
  version?: string,
  positions: FollowPositions = new Map(),
  pollMs = 250,
): Promise<void> {
  const onLine = (line: string) => {
    const record = decodeRecord(line);
    if (record) onRecord(record);
  };
  const followed = new Map<string, FollowedFile>();
  try {
    // Start where the last records were read (what is there was printed):
    // the same file from that offset, or a file that replaced it from its start.
    for (const v of await findLogFiles(stateDir, service, version)) {
      const file = new FollowedFile(v.current, onLine);
      followed.set(v.current, file);
      const at = positions.get(v.current);
      // Rotated since the read: first the rest of the file that was read
      // (now `.1`, if it is still that one), then all of the new one.
      if ((await file.open(at ?? 'end')) && at !== undefined && file.ino !== at.ino)
        await readRestOf(`${v.current}.1`, at, onLine);
    }
    const check = async () => {
      for (const v of await findLogFiles(stateDir, service, version)) {
        if (!followed.has(v.current)) followed.set(v.current, new FollowedFile(v.current, onLine));
      }
      for (const file of followed.values()) await file.poll();
    };
    await followUntilAborted(signal, pollMs, check, logsDir(stateDir));
  } finally {
    for (const file of followed.values()) await file.close();
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
