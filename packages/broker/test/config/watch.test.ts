// watchServiceDefinitions: reloads after changes, what it lets pass, close().
// Where a test shows that no reload happened, it waits for the watcher to
// report that it judged a change (onChange) and settled, never for a time.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EMBEDDED_SOURCE } from '../../src/config/definition.js';
import type { ServiceConfigLoad } from '../../src/config/load.js';
import { type ServiceConfigWatcher, watchServiceDefinitions } from '../../src/config/watch.js';
import { base, json, scratchDirs } from './fixtures.js';

const freshDir = scratchDirs();

/** Starts a watcher that records every reload, and every change it judged. */
function record(sources: Parameters<typeof watchServiceDefinitions>[0], debounceMs = 40) {
  const reloads: ServiceConfigLoad[] = [];
  const seen = new Set<string>();
  const waiting: { path: string; resolve: () => void }[] = [];
  const watcher = watchServiceDefinitions(sources, (r) => reloads.push(r), {
    debounceMs,
    // Either verdict counts: a wrong `reload: true` must fail the assertion
    // after it, not leave the test waiting for a pass that never comes.
    onChange: ({ path }) => {
      seen.add(path);
      for (const w of waiting.filter((w) => w.path === path)) w.resolve();
    },
  });
  watchers.push(watcher);
  const names = () =>
    reloads
      .at(-1)
      ?.services.map((s) => `${s.name}@${s.version}`)
      .sort();
  /**
   * Resolves once the watcher has judged a change to each of `paths` and has
   * no reload due: every change before those has been dealt with as well.
   */
  const considered = async (...paths: string[]) => {
    await Promise.all(
      paths.map((path) =>
        seen.has(path)
          ? undefined
          : new Promise<void>((resolve) => waiting.push({ path, resolve })),
      ),
    );
    await watcher.settled();
  };
  /** considered() for a fresh dotfile in `dir`, which no watcher reloads for. */
  const quiet = (dir: string) => {
    const fence = join(dir, `.fence-${fences++}`);
    writeFileSync(fence, '');
    return considered(fence);
  };
  return { reloads, watcher, names, considered, quiet };
}
let fences = 0;
const watchers: ServiceConfigWatcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
});
/** Closed handles leave Node's list in the loop's close phase, after setImmediate's. */
const settle = async () => {
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
};
const openFds = () => readdirSync('/proc/self/fd').length;
const activeCount = (type: string) =>
  process.getActiveResourcesInfo().filter((r) => r === type).length;

describe('watchServiceDefinitions', () => {
  it('reloads once with the new content after a file is edited', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'demo.json'), json(base));
    const { reloads, names, quiet } = record({ dir });
    await quiet(dir);
    expect(reloads).toEqual([]);
    writeFileSync(join(dir, 'demo.json'), json({ ...base, version: '1.2.4' }));
    await vi.waitFor(() => expect(reloads).toHaveLength(1));
    expect(names()).toEqual(['demo@1.2.4']);
    await quiet(dir);
    expect(reloads).toHaveLength(1);
  });

  it('coalesces a burst of writes into one reload', async () => {
    const dir = freshDir();
    const { reloads, names, quiet } = record({ dir }, 80);
    for (let i = 0; i < 20; i++)
      writeFileSync(join(dir, `s${i}.json`), json({ ...base, name: `s${i}` }));
    await vi.waitFor(() => expect(reloads).toHaveLength(1));
    await quiet(dir);
    expect(reloads).toHaveLength(1);
    expect(names()).toHaveLength(20);
  });

  it('sees files added and removed, and ignores files it would not load', async () => {
    const dir = freshDir();
    const { reloads, names, considered } = record({ dir });
    writeFileSync(join(dir, 'a.json'), json({ ...base, name: 'a' }));
    await vi.waitFor(() => expect(names()).toEqual(['a@1.2.3']));
    writeFileSync(join(dir, 'b.json'), json({ ...base, name: 'b' }));
    await vi.waitFor(() => expect(names()).toEqual(['a@1.2.3', 'b@1.2.3']));
    rmSync(join(dir, 'a.json'));
    await vi.waitFor(() => expect(names()).toEqual(['b@1.2.3']));
    const count = reloads.length;
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, '.b.json.swp'), 'x');
    await considered(join(dir, 'notes.txt'), join(dir, '.b.json.swp'));
    expect(reloads).toHaveLength(count);
  });

  it('follows an explicit file replaced by rename, and one created later', async () => {
    const dir = freshDir();
    const file = join(dir, 'services.json');
    const { reloads, names, considered } = record({ file });
    writeFileSync(file, json(base));
    await vi.waitFor(() => expect(names()).toEqual(['demo@1.2.3']));
    for (const version of ['1.3.0', '1.4.0']) {
      const temp = join(dir, `.services.json.${version}.tmp`);
      writeFileSync(temp, json({ ...base, version }));
      renameSync(temp, file);
      await vi.waitFor(() => expect(names()).toEqual([`demo@${version}`]));
    }
    // Siblings of the explicit file are none of its business.
    const count = reloads.length;
    writeFileSync(join(dir, 'other.json'), json(base));
    await considered(join(dir, 'other.json'));
    expect(reloads).toHaveLength(count);
  });

  it('picks up a directory created after the watch started, several levels deep', async () => {
    const dir = join(freshDir(), 'a', 'b', 'services');
    const { names } = record({ dir });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'demo.json'), json(base));
    await vi.waitFor(() => expect(names()).toEqual(['demo@1.2.3']));
    writeFileSync(join(dir, 'demo.json'), json({ ...base, version: '2.0.0' }));
    await vi.waitFor(() => expect(names()).toEqual(['demo@2.0.0']));
  });

  it('survives the directory being removed and created again', async () => {
    const dir = join(freshDir(), 'services');
    mkdirSync(dir);
    writeFileSync(join(dir, 'demo.json'), json(base));
    const { names } = record({ dir });
    rmSync(dir, { recursive: true });
    await vi.waitFor(() => expect(names()).toEqual([]));
    mkdirSync(dir);
    writeFileSync(join(dir, 'demo.json'), json({ ...base, version: '3.0.0' }));
    await vi.waitFor(() => expect(names()).toEqual(['demo@3.0.0']));
    // And the replacement directory is watched itself, not only its parent.
    writeFileSync(join(dir, 'other.json'), json({ ...base, name: 'other' }));
    await vi.waitFor(() => expect(names()).toEqual(['demo@3.0.0', 'other@1.2.3']));
  });

  it('reports a directory removed under it as a problem, so the broker keeps what it had', async () => {
    const dir = join(freshDir(), 'services');
    mkdirSync(dir);
    writeFileSync(join(dir, 'demo.json'), json(base));
    const { reloads } = record({ dir });
    rmSync(dir, { recursive: true });
    await vi.waitFor(() =>
      expect(reloads.at(-1)?.errors.map((e) => [e.code, e.file, e.errno])).toEqual([
        ['UNREADABLE', dir, 'ENOENT'],
      ]),
    );
    mkdirSync(dir);
    writeFileSync(join(dir, 'demo.json'), json(base));
    await vi.waitFor(() => expect(reloads.at(-1)?.errors).toEqual([]));
  });

  it('survives the ancestor it waits on being removed before the directory appears', async () => {
    const parent = freshDir();
    const dir = join(parent, 'a', 'services');
    mkdirSync(join(parent, 'a'));
    const { names } = record({ dir });
    rmSync(join(parent, 'a'), { recursive: true });
    await vi.waitFor(() => expect(names()).toEqual([]));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'demo.json'), json(base));
    await vi.waitFor(() => expect(names()).toEqual(['demo@1.2.3']));
  });

  it('reports errors in a reload like a load does', async () => {
    const dir = freshDir();
    const { reloads } = record({ dir, embedded: [base] });
    writeFileSync(join(dir, 'bad.json'), '{');
    await vi.waitFor(() => expect(reloads).toHaveLength(1));
    expect(reloads[0]!.services.map((s) => s.source)).toEqual([EMBEDDED_SOURCE]);
    expect(reloads[0]!.errors.map((e) => e.code)).toEqual(['INVALID_JSON']);
  });

  it('close() releases every watcher and timer, and no reload follows', async () => {
    const dir = freshDir();
    const file = join(freshDir(), 'x', 'services.json');
    // libuv keeps one inotify fd per loop once any watch exists; open it first.
    watchServiceDefinitions({ dir }, () => {}).close();
    const fds = openFds();
    await settle();
    const watchersBefore = activeCount('FSEventWrap');
    const timersBefore = activeCount('Timeout');
    const reloads: ServiceConfigLoad[] = [];
    const closed: ServiceConfigWatcher[] = [];
    for (let round = 0; round < 20; round++) {
      let due = () => {};
      const reloadDue = new Promise<void>((resolve) => {
        due = resolve;
      });
      const watcher = watchServiceDefinitions({ dir, file }, (r) => reloads.push(r), {
        debounceMs: 30,
        onChange: ({ reload }) => {
          if (reload) due();
        },
      });
      expect(activeCount('FSEventWrap')).toBe(watchersBefore + 2);
      writeFileSync(join(dir, 'demo.json'), json({ ...base, version: `1.0.${round}` }));
      // Close with a reload pending: its timer must go too.
      await reloadDue;
      watcher.close();
      closed.push(watcher);
      await settle();
      expect(openFds()).toBe(fds);
      expect(activeCount('FSEventWrap')).toBe(watchersBefore);
      // Other code's timers may come and go; ours must not be among the living.
      expect(activeCount('Timeout')).toBeLessThanOrEqual(timersBefore);
    }
    await Promise.all(closed.map((w) => w.settled()));
    expect(reloads).toEqual([]);
    expect(openFds()).toBe(fds);
  });

  it('rejects a nonsense debounce', () => {
    expect(() => watchServiceDefinitions({}, () => {}, { debounceMs: -1 })).toThrow(RangeError);
  });
});
