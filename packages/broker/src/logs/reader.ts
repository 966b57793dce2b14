// Reading a service's daemon logs back (`handoff-broker logs`): which files
// belong to it (every version, or one; rotated ones `.N` oldest first), the
// last N records across them, and following new records as they are
// written — across rotations and truncations — until stopped.
import { type FSWatcher, watch } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { BrokerError } from '../errors.js';
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
export type FollowPositions = Map<string, { ino: number; size: number }>;

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

/** One followed file: its open handle, how far it was read, a partial last line. */
interface Followed {
  path: string;
  handle: FileHandle | null;
  ino: number;
  offset: number;
  partial: Buffer;
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
  const followed = new Map<string, Followed>();
  // Start where the last records were read (what is there was printed):
  // the same file from that offset, or a file that replaced it from its start.
  for (const v of await findLogFiles(stateDir, service, version)) {
    const f: Followed = {
      path: v.current,
      handle: null,
      ino: 0,
      offset: 0,
      partial: Buffer.alloc(0),
    };
    const at = positions.get(v.current);
    await reopen(f, at === undefined);
    if (f.handle && at !== undefined) {
      if (f.ino === at.ino) f.offset = at.size;
      else {
        // Rotated since the read: first the rest of the file that was read
        // (now `.1`, if it is still that one), then all of the new one.
        f.offset = 0;
        await readRotatedRest(`${v.current}.1`, at, onRecord);
      }
    }
    followed.set(v.current, f);
  }
  let running: Promise<void> | null = null;
  let again = false;
  const check = async () => {
    for (const v of await findLogFiles(stateDir, service, version)) {
      if (!followed.has(v.current))
        followed.set(v.current, {
          path: v.current,
          handle: null,
          ino: 0,
          offset: 0,
          partial: Buffer.alloc(0),
        });
    }
    for (const f of followed.values()) await poll(f, onRecord);
  };
  // One check at a time; a trigger during one runs another after it.
  const trigger = () => {
    if (signal.aborted) return;
    if (running) {
      again = true;
      return;
    }
    running = check()
      .catch(() => {})
      .finally(() => {
        running = null;
        if (again) {
          again = false;
          trigger();
        }
      });
  };
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(logsDir(stateDir), () => trigger());
    watcher.on('error', () => {});
  } catch {
    // No directory yet (or no inotify): the poll below still sees changes.
  }
  const timer = setInterval(trigger, pollMs);
  try {
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    clearInterval(timer);
    watcher?.close();
    while (running) await running;
    for (const f of followed.values()) await f.handle?.close();
  }
}

/** The records `path` got after `at.size`, if it is the file (inode) that was read. */
async function readRotatedRest(
  path: string,
  at: { ino: number; size: number },
  onRecord: (record: LogRecord) => void,
): Promise<void> {
  const f: Followed = { path, handle: null, ino: 0, offset: 0, partial: Buffer.alloc(0) };
  await reopen(f, false);
  try {
    if (!f.handle || f.ino !== at.ino) return;
    f.offset = at.size;
    await readNew(f, onRecord);
  } finally {
    await f.handle?.close();
  }
}

/** Opens `f.path` afresh; `atEnd` starts after what it holds. */
async function reopen(f: Followed, atEnd: boolean): Promise<void> {
  await f.handle?.close();
  f.handle = null;
  f.partial = Buffer.alloc(0);
  f.offset = 0;
  try {
    const handle = await open(f.path, 'r');
    const info = await handle.stat();
    f.handle = handle;
    f.ino = info.ino;
    f.offset = atEnd ? info.size : 0;
  } catch {
    // Not there (yet): the next poll tries again.
  }
}

/** Reads what was appended; on rotation, the rest of the old file, then the new one from its start. */
async function poll(f: Followed, onRecord: (record: LogRecord) => void): Promise<void> {
  if (!f.handle) {
    await reopen(f, false);
    if (!f.handle) return;
  }
  await readNew(f, onRecord);
  const now = await stat(f.path).catch(() => null);
  if (now && now.ino !== f.ino) {
    // Rotated: the writer appends nothing to the old file after renaming
    // it, so reading it once more now gets all of it.
    await readNew(f, onRecord);
    await reopen(f, false);
    await readNew(f, onRecord);
  }
}

async function readNew(f: Followed, onRecord: (record: LogRecord) => void): Promise<void> {
  const handle = f.handle!;
  const { size } = await handle.stat();
  // Truncated (logFiles 0): start over.
  if (size < f.offset) {
    f.offset = 0;
    f.partial = Buffer.alloc(0);
  }
  while (f.offset < size) {
    const length = Math.min(CHUNK, size - f.offset);
    const chunk = Buffer.alloc(length);
    const { bytesRead } = await handle.read(chunk, 0, length, f.offset);
    if (bytesRead === 0) break;
    f.offset += bytesRead;
    // Split on newline bytes, so a character cut by the chunk is not decoded in halves.
    const data = Buffer.concat([f.partial, chunk.subarray(0, bytesRead)]);
    const last = data.lastIndexOf(10);
    f.partial = Buffer.from(data.subarray(last + 1));
    if (last === -1) continue;
    for (const line of data.subarray(0, last).toString('utf8').split('\n')) {
      const record = decodeRecord(line);
      if (record) onRecord(record);
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
