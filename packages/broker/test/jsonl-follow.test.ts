// The one follower under `events -f` and `logs -f`, on real files: whole
// lines only (a line without its newline waits for it, a character split
// across writes is not decoded in halves), truncation starts over, rotation
// reads the rest of the old file before the new one, a position taken of
// another file is ignored, and nothing stays open after following stops.
import { appendFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FollowedFile, followUntilAborted, readAllLines, readRestOf } from '../src/jsonl-follow.js';
import { openFds, tempDir } from './harness.js';

const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => {
  for (const d of dirs) d.remove();
});
function file(): string {
  const d = tempDir('jsonl');
  dirs.push(d);
  return join(d.dir, 'x.jsonl');
}

describe('FollowedFile', () => {
  it('hands over whole lines only, in order, across partial writes and split characters', async () => {
    const path = file();
    writeFileSync(path, 'old\n');
    const lines: string[] = [];
    const followed = new FollowedFile(path, (line) => lines.push(line));
    expect(await followed.open('end')).toBe(true);
    const euro = Buffer.from('€');
    appendFileSync(path, Buffer.concat([Buffer.from('a\nb'), euro.subarray(0, 1)]));
    await followed.poll();
    expect(lines).toEqual(['a']);
    appendFileSync(path, Buffer.concat([euro.subarray(1), Buffer.from('\n')]));
    await followed.poll();
    expect(lines).toEqual(['a', 'b€']);
    await followed.close();
  });

  it('starts over after a truncation, and reads the rest of a rotated file before the new one', async () => {
    const path = file();
    writeFileSync(path, '1\n2\n');
    const lines: string[] = [];
    const followed = new FollowedFile(path, (line) => lines.push(line));
    await followed.open('start');
    await followed.poll();
    truncateSync(path, 0);
    appendFileSync(path, '3\n');
    await followed.poll();
    expect(lines).toEqual(['1', '2', '3']);
    appendFileSync(path, '4\n');
    renameSync(path, `${path}.1`);
    writeFileSync(path, '5\n');
    const between: string[] = [];
    await followed.poll(async () => {
      between.push(`after ${lines.at(-1)}`);
    });
    expect(lines).toEqual(['1', '2', '3', '4', '5']);
    expect(between).toEqual(['after 4']);
    await followed.close();
  });

  it('ignores a position taken of another file, and waits for a file that is not there yet', async () => {
    const path = file();
    const lines: string[] = [];
    const followed = new FollowedFile(path, (line) => lines.push(line));
    expect(await followed.open('start')).toBe(false);
    writeFileSync(path, 'a\n');
    expect(await followed.open({ ino: followed.ino + 12345, size: 1 })).toBe(true);
    await followed.readNew();
    expect(lines).toEqual(['a']);
    await followed.close();
  });
});

describe('the rotated files', () => {
  it('readRestOf reads past the position only in the same file; readAllLines skips a torn end', async () => {
    const path = file();
    writeFileSync(path, 'a\nb\n');
    const probe = new FollowedFile(path, () => {});
    await probe.open('start');
    const ino = probe.ino;
    await probe.close();
    const rest: string[] = [];
    await readRestOf(path, { ino, size: 2 }, (line) => rest.push(line));
    await readRestOf(path, { ino: ino + 1, size: 0 }, (line) => rest.push(`wrong ${line}`));
    expect(rest).toEqual(['b']);
    appendFileSync(path, 'torn');
    const all: string[] = [];
    await readAllLines(path, (line) => all.push(line));
    await readAllLines(`${path}.gone`, (line) => all.push(line));
    expect(all).toEqual(['a', 'b']);
  });
});

describe('followUntilAborted', () => {
  it('checks until aborted, one check at a time, and leaves no fd or timer behind', async () => {
    const path = file();
    writeFileSync(path, '');
    const fdsBefore = openFds();
    const lines: string[] = [];
    const followed = new FollowedFile(path, (line) => lines.push(line));
    await followed.open('start');
    const controller = new AbortController();
    let active = 0;
    let overlapped = false;
    const done = followUntilAborted(controller.signal, 5, async () => {
      active++;
      overlapped ||= active > 1;
      await followed.poll();
      await new Promise((resolve) => setTimeout(resolve, 15));
      active--;
      if (lines.length > 0) controller.abort();
    });
    appendFileSync(path, 'x\n');
    await done;
    await followed.close();
    expect(lines).toEqual(['x']);
    expect(overlapped).toBe(false);
    expect(openFds()).toBe(fdsBefore);
  });
});
