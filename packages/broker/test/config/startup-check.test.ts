// startup-check.ts + config-error.ts: what `serve` refuses to start on,
// with real files: the code, the file, and for broken JSON line and column.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import { checkStartupConfig } from '../../src/config/startup-check.js';
import { BrokerError } from '../../src/errors.js';
import { base, json, scratchDirs } from './fixtures.js';

const freshDir = scratchDirs();

describe('checkStartupConfig', () => {
  it('passes a directory and a file that load cleanly', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'a.json'), json(base));
    const file = join(freshDir(), 'one.json');
    writeFileSync(file, json({ ...base, name: 'other' }));
    const { load, error } = await checkStartupConfig({ dir, file });
    expect(error).toBeNull();
    expect(load.services.map((s) => s.name)).toEqual(['demo', 'other']);
  });

  it('CONFIG_MISSING: a --config-file that does not exist', async () => {
    const file = join(freshDir(), 'nope.json');
    const { error } = await checkStartupConfig({ file });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(BrokerError);
    expect(error).toMatchObject({ code: 'CONFIG_MISSING', file, line: undefined });
    expect(error!.message).toBe(`${file}: does not exist`);
  });

  it('CONFIG_SYNTAX: broken JSON, with line and column', async () => {
    const file = join(freshDir(), 'broken.json');
    writeFileSync(
      file,
      '{\n  "name": "demo",\n  "version": "1.0.0"\n  "command": "/bin/true"\n}\n',
    );
    const { error } = await checkStartupConfig({ file });
    expect(error).toMatchObject({ code: 'CONFIG_SYNTAX', file, line: 4, column: 3 });
    expect(error!.message).toMatch(new RegExp(`^${file}:4:3: is not JSON: `));
    expect(error!.toJSON()).toMatchObject({
      ok: false,
      code: 'CONFIG_SYNTAX',
      file,
      line: 4,
      column: 3,
    });
  });

  it('CONFIG_INVALID: a definition file in the directory that is not valid', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'a.json'), json(base));
    writeFileSync(join(dir, 'b.json'), json({ ...base, name: 'b', readyTimeoutMs: 'soon' }));
    const { load, error } = await checkStartupConfig({ dir });
    expect(error).toMatchObject({ code: 'CONFIG_INVALID', file: join(dir, 'b.json') });
    expect(error!.message).toMatch(/readyTimeoutMs/);
    expect(load.services.map((s) => s.name)).toEqual(['demo']);
  });

  it('CONFIG_DIR_MISSING: a directory that does not exist, or is a file', async () => {
    const dir = join(freshDir(), 'nowhere');
    const missing = await checkStartupConfig({ dir });
    expect(missing.error).toMatchObject({ code: 'CONFIG_DIR_MISSING', file: dir });
    expect(missing.error!.message).toBe(`${dir}: does not exist`);
    const byDefault = await checkStartupConfig({ dir, dirIsDefault: true });
    expect(byDefault.error!.message).toMatch(
      /the default directory: create it, or pass --config-dir/,
    );
    const file = join(freshDir(), 'file');
    writeFileSync(file, '{}');
    expect((await checkStartupConfig({ dir: file })).error).toMatchObject({
      code: 'CONFIG_DIR_MISSING',
      message: `${file}: is not a directory`,
    });
  });

  it.skipIf(process.getuid?.() === 0)(
    'CONFIG_UNREADABLE: a directory that cannot be listed',
    async () => {
      const dir = join(freshDir(), 'locked');
      mkdirSync(dir);
      chmodSync(dir, 0o000);
      try {
        const { error } = await checkStartupConfig({ dir });
        expect(error).toMatchObject({ code: 'CONFIG_UNREADABLE', file: dir });
        expect(error!.message).toMatch(/EACCES/);
      } finally {
        chmodSync(dir, 0o700);
      }
    },
  );

  it('/dev/null is an explicit empty configuration, not an error', async () => {
    const { load, error } = await checkStartupConfig({ file: '/dev/null' });
    expect(error).toBeNull();
    expect(load).toEqual({ services: [], errors: [] });
  });
});
