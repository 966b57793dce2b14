// loadServiceDefinitions: files, directories, embedded values, duplicates.
import { execFileSync } from 'node:child_process';
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EMBEDDED_SOURCE,
  parseServiceDefinition,
  ServiceConfigError,
} from '../../src/config/definition.js';
import { loadServiceDefinitions, MAX_SERVICE_CONFIG_BYTES } from '../../src/config/load.js';
import { base, json, scratchDirs } from './fixtures.js';

const freshDir = scratchDirs();
const CODES = ['INVALID_DEFINITION', 'DUPLICATE_SERVICE', 'UNREADABLE', 'INVALID_JSON'];

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
