import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  EMBEDDED_SOURCE,
  loadServiceDefinitions,
  MAX_SERVICE_CONFIG_BYTES,
  parseServiceDefinition,
  ServiceConfigError,
  type ServiceConfigLoad,
  type ServiceConfigWatcher,
  watchServiceDefinitions,
} from '../src/service-config.js';

const root = mkdtempSync(join(tmpdir(), 'handoff-service-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
/** A fresh directory per test, so tests never see each other's files. */
function freshDir(): string {
  const dir = join(root, `t${counter++}`);
  mkdirSync(dir);
  return dir;
}

const CODES = ['INVALID_DEFINITION', 'DUPLICATE_SERVICE', 'UNREADABLE', 'INVALID_JSON'];
const base = { name: 'demo', version: '1.2.3', command: '/usr/bin/demo' };
const json = (value: unknown) => JSON.stringify(value, null, 2);

function expectConfigError(fn: () => unknown): ServiceConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceConfigError);
    return error as ServiceConfigError;
  }
  throw new Error('expected a ServiceConfigError');
}

describe('parseServiceDefinition', () => {
  it('resolves defaults and freezes the result', () => {
    const d = parseServiceDefinition(base, '/cfg/demo.json');
    expect(d).toEqual({
      ...base,
      args: [],
      env: {},
      handoff: true,
      readyTimeoutMs: 10_000,
      stopGraceMs: 5_000,
      source: '/cfg/demo.json',
    });
    expect(Object.isFrozen(d) && Object.isFrozen(d.args) && Object.isFrozen(d.env)).toBe(true);
    expect('cwd' in d || 'minVersion' in d || 'idleTimeoutSecs' in d).toBe(false);
  });

  it('keeps every field that is set', () => {
    const full = {
      ...base,
      version: '2.0.0-rc.1',
      command: 'demo-daemon',
      args: ['--serve', ''],
      env: { RUST_LOG: 'debug', EMPTY: '' },
      cwd: '/var/lib/demo',
      handoff: false,
      minVersion: '1.0.0',
      allowVersions: ['1.0.0', '2.0.0-rc.1'],
      idleTimeoutSecs: 0,
      maxClients: 64,
      readyTimeoutMs: 1,
      stopGraceMs: 0,
    };
    expect(parseServiceDefinition(full, 'f.json')).toEqual({ ...full, source: 'f.json' });
  });

  it.each([
    [[], undefined, /must be a JSON object, not an array/],
    [null, undefined, /not null/],
    [{ ...base, comand: 'x' }, 'comand', /unknown key "comand".*known keys: name, version/],
    [{ ...base, 'bad key': 1 }, '["bad key"]', /unknown key/],
    [{ version: '1.0.0', command: 'x' }, 'name', /is required/],
    [{ ...base, name: 'Demo' }, 'name', /must match \[a-z0-9-\]\{1,64\}/],
    [{ ...base, name: 7 }, 'name', /must be a string, not a number/],
    [{ ...base, version: undefined }, 'version', /is required/],
    [{ ...base, version: '1.2' }, 'version', /must look like 1\.2\.3/],
    [{ ...base, version: '01.2.3' }, 'version', /leading zero/],
    [{ ...base, version: '1.2.3-rc..1' }, 'version', /empty prerelease/],
    [{ ...base, version: `1.2.3-${'a'.repeat(64)}` }, 'version', /exceeds 64 bytes/],
    [{ ...base, command: '' }, 'command', /must not be empty/],
    [{ ...base, command: './bin/demo' }, 'command', /absolute path or a bare name/],
    [{ ...base, command: '/bin/de\0mo' }, 'command', /NUL/],
    [{ ...base, args: 'x' }, 'args', /must be an array, not a string/],
    [{ ...base, args: ['ok', 3] }, 'args[1]', /must be a string/],
    [{ ...base, env: ['A=1'] }, 'env', /must be an object, not an array/],
    [{ ...base, env: { A: 1 } }, 'env.A', /must be a string/],
    [{ ...base, env: { 'A=B': 'x' } }, 'env["A=B"]', /variable name/],
    [{ ...base, env: { '': 'x' } }, 'env[""]', /variable name/],
    [{ ...base, cwd: 'relative/dir' }, 'cwd', /must be an absolute path/],
    [{ ...base, handoff: 'yes' }, 'handoff', /true or false/],
    [{ ...base, minVersion: '1.0.0-rc.1' }, 'minVersion', /release version/],
    [{ ...base, minVersion: 1 }, 'minVersion', /must be a string/],
    [{ ...base, allowVersions: '1.0.0' }, 'allowVersions', /must be an array/],
    [{ ...base, allowVersions: [] }, 'allowVersions', /at least one/],
    [{ ...base, allowVersions: ['1.0.0', 'x'] }, 'allowVersions[1]', /must look like/],
    [{ ...base, idleTimeoutSecs: -1 }, 'idleTimeoutSecs', /integer from 0/],
    [{ ...base, idleTimeoutSecs: 1.5 }, 'idleTimeoutSecs', /integer/],
    [{ ...base, idleTimeoutSecs: 3_000_000 }, 'idleTimeoutSecs', /to 2147483/],
    [{ ...base, maxClients: 0 }, 'maxClients', /integer from 1/],
    [{ ...base, readyTimeoutMs: 0 }, 'readyTimeoutMs', /integer from 1 to 2147483647/],
    [{ ...base, readyTimeoutMs: '10' }, 'readyTimeoutMs', /not "10"/],
    [{ ...base, stopGraceMs: 2 ** 31 }, 'stopGraceMs', /to 2147483647/],
  ])('refuses %j at field %s', (value, field, message) => {
    const error = expectConfigError(() => parseServiceDefinition(value, '/cfg/x.json'));
    expect(error.code).toBe('INVALID_DEFINITION');
    expect(error.file).toBe('/cfg/x.json');
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
    expect(
      error.message.startsWith(`/cfg/x.json${field === undefined ? '' : `: ${field}`}: `),
    ).toBe(true);
  });

  it('prefixes field paths with where the definition sits', () => {
    const error = expectConfigError(() =>
      parseServiceDefinition({ ...base, args: ['a', null] }, 'f.json', 'services[1]'),
    );
    expect(error.field).toBe('services[1].args[1]');
    expect(error.message).toBe('f.json: services[1].args[1]: must be a string, not null');
  });

  it('keeps "__proto__" keys as data, never as a prototype', () => {
    const value = JSON.parse(
      '{"name":"demo","version":"1.0.0","command":"x","env":{"__proto__":"p"}}',
    );
    const d = parseServiceDefinition(value, 'f.json');
    expect(Object.getPrototypeOf(d.env)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(d.env, '__proto__')?.value).toBe('p');
    const top = JSON.parse('{"name":"demo","version":"1.0.0","command":"x","__proto__":{}}');
    expect(expectConfigError(() => parseServiceDefinition(top, 'f.json')).field).toBe('__proto__');
  });

  it('ignores inherited properties: a definition is its own keys only', () => {
    const proto = { args: ['inherited'] };
    const d = parseServiceDefinition(Object.assign(Object.create(proto), base), 'f.json');
    expect(d.args).toEqual([]);
  });

  it('turns a throwing getter into a typed error', () => {
    const hostile = {
      ...base,
      get args(): string[] {
        throw new Error('boom');
      },
    };
    const error = expectConfigError(() =>
      parseServiceDefinition(hostile, EMBEDDED_SOURCE, 'embedded[0]'),
    );
    expect(error).toMatchObject({ code: 'INVALID_DEFINITION', field: 'embedded[0]' });
    expect(error.message).toMatch(/boom/);
  });

  it('only ever throws INVALID_DEFINITION for any value (property)', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withObjectString: true }), (value) => {
        try {
          parseServiceDefinition(value, 'f.json');
        } catch (error) {
          expect(error).toBeInstanceOf(ServiceConfigError);
          expect((error as ServiceConfigError).code).toBe('INVALID_DEFINITION');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('survives mutated valid definitions with a typed error naming a field under the prefix (property)', () => {
    const valid = {
      ...base,
      args: ['a', 'b'],
      env: { A: 'x' },
      cwd: '/srv',
      handoff: true,
      minVersion: '1.0.0',
      allowVersions: ['1.2.3'],
      idleTimeoutSecs: 5,
      maxClients: 3,
      readyTimeoutMs: 100,
      stopGraceMs: 10,
    };
    const keys = [...Object.keys(valid), 'extra', 'services'];
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...keys) }),
      fc.record({
        op: fc.constant('set' as const),
        key: fc.constantFrom(...keys),
        value: fc.jsonValue(),
      }),
      fc.record({ op: fc.constant('rename' as const), key: fc.string(), value: fc.jsonValue() }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 4 }), (mutations) => {
        const value: Record<string, unknown> = structuredClone(valid);
        for (const m of mutations) {
          if (m.op === 'delete') delete value[m.key];
          else value[m.key] = m.value;
        }
        try {
          const d = parseServiceDefinition(value, 'f.json', 'services[0]');
          expect(d.source).toBe('f.json');
        } catch (error) {
          expect(error).toBeInstanceOf(ServiceConfigError);
          const e = error as ServiceConfigError;
          expect(e.code).toBe('INVALID_DEFINITION');
          expect(e.field?.startsWith('services[0]')).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('loadServiceDefinitions', () => {
  it('loads one definition per file and { services: [...] } files, in file-name order', async () => {
    const dir = freshDir();
    writeFileSync(
      join(dir, 'b.json'),
      json({
        services: [
          { ...base, name: 'b1' },
          { ...base, name: 'b2' },
        ],
      }),
    );
    writeFileSync(join(dir, 'a.json'), json({ ...base, name: 'a' }));
    writeFileSync(join(dir, 'empty.json'), json({ services: [] }));
    const result = await loadServiceDefinitions({ dir });
    expect(result.errors).toEqual([]);
    expect(result.services.map((s) => [s.name, s.source])).toEqual([
      ['a', join(dir, 'a.json')],
      ['b1', join(dir, 'b.json')],
      ['b2', join(dir, 'b.json')],
    ]);
  });

  it('reports each bad definition with its file and field path and still loads the rest', async () => {
    const dir = freshDir();
    writeFileSync(
      join(dir, 'many.json'),
      json({ services: [{ ...base, name: 'ok' }, { ...base, name: 'bad', args: [1] }, 'nope'] }),
    );
    writeFileSync(join(dir, 'broken.json'), '{ "name": ');
    writeFileSync(join(dir, 'good.json'), json({ ...base, name: 'good' }));
    const result = await loadServiceDefinitions({ dir });
    expect(result.services.map((s) => s.name).sort()).toEqual(['good', 'ok']);
    expect(result.errors.map((e) => [e.code, e.file, e.field])).toEqual([
      ['INVALID_JSON', join(dir, 'broken.json'), undefined],
      ['INVALID_DEFINITION', join(dir, 'many.json'), 'services[1].args[0]'],
      ['INVALID_DEFINITION', join(dir, 'many.json'), 'services[2]'],
    ]);
    expect(result.errors[1]!.message).toBe(
      `${join(dir, 'many.json')}: services[1].args[0]: must be a string, not a number`,
    );
  });

  it('refuses a "services" that is not an array and keys beside it', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'a.json'), json({ services: { name: 'x' } }));
    writeFileSync(join(dir, 'b.json'), json({ services: [base], comment: 'hi' }));
    const result = await loadServiceDefinitions({ dir });
    expect(result.services.map((s) => s.source)).toEqual([join(dir, 'b.json')]);
    expect(result.errors.map((e) => [e.code, e.field])).toEqual([
      ['INVALID_DEFINITION', 'services'],
      ['INVALID_DEFINITION', 'comment'],
    ]);
  });

  it('treats a missing directory as no services, but a missing explicit file as an error', async () => {
    const dir = join(freshDir(), 'absent');
    expect(await loadServiceDefinitions({ dir })).toEqual({ services: [], errors: [] });
    const file = join(dir, 'services.json');
    const result = await loadServiceDefinitions({ file });
    expect(result.services).toEqual([]);
    expect(result.errors.map((e) => [e.code, e.file])).toEqual([['UNREADABLE', file]]);
    expect(result.errors[0]!.message).toMatch(/does not exist/);
  });

  it('reports a directory path that is a file as UNREADABLE', async () => {
    const file = join(freshDir(), 'not-a-dir');
    writeFileSync(file, '');
    const result = await loadServiceDefinitions({ dir: file });
    expect(result.errors.map((e) => [e.code, e.file])).toEqual([['UNREADABLE', file]]);
    expect(result.errors[0]!.message).toMatch(/ENOTDIR/);
  });

  it('ignores dotfiles and other extensions (editor temp and lock files)', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, '.#demo.json'), 'garbage');
    writeFileSync(join(dir, '.demo.json.swp'), 'garbage');
    writeFileSync(join(dir, 'demo.json~'), 'garbage');
    writeFileSync(join(dir, 'README.md'), 'garbage');
    writeFileSync(join(dir, 'demo.json'), json(base));
    const result = await loadServiceDefinitions({ dir });
    expect(result).toMatchObject({ errors: [], services: [{ name: 'demo' }] });
  });

  it('refuses files over 1 MiB without reading them', async () => {
    const dir = freshDir();
    const big = join(dir, 'big.json');
    writeFileSync(big, '');
    // Sparse: 64 GiB would be impossible to read; the cap must be checked first.
    truncateSync(big, 64 * 1024 ** 3);
    const exact = join(dir, 'exact.json');
    writeFileSync(exact, json(base).padEnd(MAX_SERVICE_CONFIG_BYTES, ' '));
    const result = await loadServiceDefinitions({ dir });
    expect(result.services.map((s) => s.source)).toEqual([exact]);
    expect(result.errors.map((e) => [e.code, e.file])).toEqual([['UNREADABLE', big]]);
    expect(result.errors[0]!.message).toMatch(/over the 1048576-byte cap; not read/);
  });

  it('refuses FIFOs and directories named *.json without hanging', async () => {
    const dir = freshDir();
    execFileSync('mkfifo', [join(dir, 'pipe.json')]);
    mkdirSync(join(dir, 'sub.json'));
    const result = await loadServiceDefinitions({ dir });
    expect(
      result.errors.map((e) => [e.code, e.file, e.message.endsWith('is not a regular file')]),
    ).toEqual([
      ['UNREADABLE', join(dir, 'pipe.json'), true],
      ['UNREADABLE', join(dir, 'sub.json'), true],
    ]);
  });

  it('reports bytes that are not UTF-8 or not JSON as INVALID_JSON, and accepts a BOM', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'a.json'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    writeFileSync(join(dir, 'b.json'), '');
    writeFileSync(join(dir, 'c.json'), `\ufeff${json(base)}`);
    const result = await loadServiceDefinitions({ dir });
    expect(result.services.map((s) => s.source)).toEqual([join(dir, 'c.json')]);
    expect(result.errors.map((e) => [e.code, e.file])).toEqual([
      ['INVALID_JSON', join(dir, 'a.json')],
      ['INVALID_JSON', join(dir, 'b.json')],
    ]);
    expect(result.errors[0]!.message).toMatch(/not valid UTF-8/);
  });

  it('keeps the first of two same name+version definitions and names both files', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'a.json'), json(base));
    writeFileSync(join(dir, 'b.json'), json({ services: [{ ...base, version: '1.3.0' }, base] }));
    const file = join(freshDir(), 'extra.json');
    writeFileSync(file, json(base));
    const result = await loadServiceDefinitions({
      dir,
      file,
      embedded: [{ ...base, version: '9.0.0' }],
    });
    expect(result.services.map((s) => `${s.version} ${s.source}`)).toEqual([
      `9.0.0 ${EMBEDDED_SOURCE}`,
      `1.2.3 ${join(dir, 'a.json')}`,
      `1.3.0 ${join(dir, 'b.json')}`,
    ]);
    expect(result.errors.map((e) => [e.code, e.file, e.firstFile])).toEqual([
      ['DUPLICATE_SERVICE', join(dir, 'b.json'), join(dir, 'a.json')],
      ['DUPLICATE_SERVICE', file, join(dir, 'a.json')],
    ]);
    expect(result.errors[0]!.message).toContain(
      `demo@1.2.3 is already defined in ${join(dir, 'a.json')}`,
    );
  });

  it('loads embedded definitions with their index as the field path', async () => {
    const result = await loadServiceDefinitions({ embedded: [base, { ...base, name: 'BAD' }] });
    expect(result.services).toMatchObject([{ name: 'demo', source: EMBEDDED_SOURCE }]);
    expect(result.errors.map((e) => [e.code, e.file, e.field])).toEqual([
      ['INVALID_DEFINITION', EMBEDDED_SOURCE, 'embedded[1].name'],
    ]);
  });

  it('does not load an explicit file twice when it is also in the directory', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'a.json'), json(base));
    const result = await loadServiceDefinitions({ dir, file: join(dir, '.', 'a.json') });
    expect(result).toMatchObject({ errors: [], services: [{ name: 'demo' }] });
  });

  it('never rejects for any file content, and loads only valid definitions (property)', async () => {
    const dir = freshDir();
    const file = join(dir, 'fuzz.json');
    const content = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.jsonValue().map((v) => JSON.stringify({ services: [base, v] })),
      fc.jsonValue().map((v) => JSON.stringify({ ...base, args: v })),
      fc.string(),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      // Valid JSON cut short or with a byte flipped.
      fc.tuple(fc.nat(), fc.nat(255)).map(([at, byte]) => {
        const text = Buffer.from(json({ services: [base, { ...base, name: 'x' }] }));
        const i = at % text.length;
        return at % 2 === 0
          ? text.subarray(0, i)
          : Buffer.from(text.map((c, j) => (j === i ? byte : c)));
      }),
    );
    await fc.assert(
      fc.asyncProperty(content, async (text) => {
        writeFileSync(file, text);
        const result = await loadServiceDefinitions({ dir, file });
        for (const e of result.errors) {
          expect(e).toBeInstanceOf(ServiceConfigError);
          expect(CODES).toContain(e.code);
          expect(e.file).toBe(file);
        }
        for (const { source, ...rest } of result.services) {
          expect(source).toBe(file);
          expect(parseServiceDefinition(rest, 'again')).toEqual({ ...rest, source: 'again' });
        }
      }),
      { numRuns: 300 },
    );
  });
});

/** Starts a watcher that records every reload. */
function record(sources: Parameters<typeof watchServiceDefinitions>[0], debounceMs = 40) {
  const reloads: ServiceConfigLoad[] = [];
  const watcher = watchServiceDefinitions(sources, (r) => reloads.push(r), { debounceMs });
  watchers.push(watcher);
  const names = () =>
    reloads
      .at(-1)
      ?.services.map((s) => `${s.name}@${s.version}`)
      .sort();
  return { reloads, watcher, names };
}
const watchers: ServiceConfigWatcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
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
    const { reloads, names } = record({ dir });
    await sleep(60);
    expect(reloads).toEqual([]);
    writeFileSync(join(dir, 'demo.json'), json({ ...base, version: '1.2.4' }));
    await vi.waitFor(() => expect(reloads).toHaveLength(1));
    expect(names()).toEqual(['demo@1.2.4']);
    await sleep(150);
    expect(reloads).toHaveLength(1);
  });

  it('coalesces a burst of writes into one reload', async () => {
    const dir = freshDir();
    const { reloads, names } = record({ dir }, 80);
    for (let i = 0; i < 20; i++)
      writeFileSync(join(dir, `s${i}.json`), json({ ...base, name: `s${i}` }));
    await vi.waitFor(() => expect(reloads).toHaveLength(1));
    await sleep(200);
    expect(reloads).toHaveLength(1);
    expect(names()).toHaveLength(20);
  });

  it('sees files added and removed, and ignores files it would not load', async () => {
    const dir = freshDir();
    const { reloads, names } = record({ dir });
    writeFileSync(join(dir, 'a.json'), json({ ...base, name: 'a' }));
    await vi.waitFor(() => expect(names()).toEqual(['a@1.2.3']));
    writeFileSync(join(dir, 'b.json'), json({ ...base, name: 'b' }));
    await vi.waitFor(() => expect(names()).toEqual(['a@1.2.3', 'b@1.2.3']));
    rmSync(join(dir, 'a.json'));
    await vi.waitFor(() => expect(names()).toEqual(['b@1.2.3']));
    const count = reloads.length;
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, '.b.json.swp'), 'x');
    await sleep(150);
    expect(reloads).toHaveLength(count);
  });

  it('follows an explicit file replaced by rename, and one created later', async () => {
    const dir = freshDir();
    const file = join(dir, 'services.json');
    const { reloads, names } = record({ file });
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
    await sleep(150);
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
    for (let round = 0; round < 20; round++) {
      const watcher = watchServiceDefinitions({ dir, file }, (r) => reloads.push(r), {
        debounceMs: 30,
      });
      expect(activeCount('FSEventWrap')).toBe(watchersBefore + 2);
      writeFileSync(join(dir, 'demo.json'), json({ ...base, version: `1.0.${round}` }));
      // Close with a reload pending: its timer must go too.
      await sleep(5);
      watcher.close();
      await settle();
      expect(openFds()).toBe(fds);
      expect(activeCount('FSEventWrap')).toBe(watchersBefore);
      // Other code's timers may come and go; ours must not be among the living.
      expect(activeCount('Timeout')).toBeLessThanOrEqual(timersBefore);
    }
    await sleep(100);
    expect(reloads).toEqual([]);
    expect(openFds()).toBe(fds);
  });

  it('rejects a nonsense debounce', () => {
    expect(() => watchServiceDefinitions({}, () => {}, { debounceMs: -1 })).toThrow(RangeError);
  });
});
