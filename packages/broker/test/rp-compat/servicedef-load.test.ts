// Loading a `.servicedef` directory (src/rp-compat/servicedef-load.ts) on
// real files: where it is, refusing one that is not private, a file named
// for another service, a FIFO, an oversized file, and a service defined both
// here and in our JSON (an error naming both files).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServiceDefinition } from '../../src/config/definition.js';
import {
  loadServicedefs,
  mergeServicedefs,
  rpServicedefDir,
} from '../../src/rp-compat/servicedef-load.js';
import { MAX_SERVICEDEF_BYTES } from '../../src/rp-compat/servicedef-wire.js';
import { tempDir } from '../harness.js';

const fixtures = join(import.meta.dirname, 'fixtures');

describe('rp-compat servicedef directory', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  function privateDir(): string {
    const t = tempDir('rp-servicedefs');
    cleanups.push(t.remove);
    const dir = t.path('services');
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  }

  it('is $RUNNING_PROCESS_SERVICE_DEF_DIR, else under XDG_CONFIG_HOME, else ~/.config', () => {
    expect(
      rpServicedefDir({ RUNNING_PROCESS_SERVICE_DEF_DIR: '/a', XDG_CONFIG_HOME: '/b' }, '/h'),
    ).toBe('/a');
    expect(rpServicedefDir({ XDG_CONFIG_HOME: '/b' }, '/h')).toBe('/b/running-process/services');
    expect(rpServicedefDir({ XDG_CONFIG_HOME: 'rel' }, '/h')).toBe(
      '/h/.config/running-process/services',
    );
    expect(rpServicedefDir({}, '/h')).toBe('/h/.config/running-process/services');
  });

  it('loads the golden file and reports each refused one by file and RP field', () => {
    const dir = privateDir();
    copyFileSync(join(fixtures, 'demo-echo.servicedef'), join(dir, 'demo-echo.servicedef'));
    copyFileSync(
      join(fixtures, 'private-default.servicedef'),
      join(dir, 'private-default.servicedef'),
    );
    // The right bytes under another service's name.
    copyFileSync(join(fixtures, 'demo-echo.servicedef'), join(dir, 'renamed.servicedef'));
    writeFileSync(join(dir, 'notes.txt'), 'not a servicedef');
    writeFileSync(join(dir, '.editor.servicedef'), 'a dotfile is skipped');
    const out = loadServicedefs(dir);
    expect(out.services.map((s) => [s.name, s.version, s.source])).toEqual([
      ['demo-echo', '1.2.0', join(dir, 'demo-echo.servicedef')],
    ]);
    expect(out.errors.map((e) => [e.code, e.file, e.field])).toEqual([
      ['INVALID_DEFINITION', join(dir, 'private-default.servicedef'), 'isolation'],
      ['INVALID_DEFINITION', join(dir, 'renamed.servicedef'), 'service_name'],
    ]);
    expect(out.errors[1]?.message).toContain('differs from the file name');
  });

  it('refuses a directory that is not private (0700), loading nothing from it', () => {
    const dir = privateDir();
    copyFileSync(join(fixtures, 'demo-echo.servicedef'), join(dir, 'demo-echo.servicedef'));
    chmodSync(dir, 0o755);
    const out = loadServicedefs(dir);
    expect(out.services).toEqual([]);
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]).toMatchObject({ code: 'UNREADABLE', file: dir });
    expect(out.errors[0]?.message).toContain('is not private (mode 755)');
  });

  it('holds nothing, quietly, when the directory does not exist', () => {
    expect(loadServicedefs('/nonexistent/running-process/services')).toEqual({
      services: [],
      errors: [],
    });
  });

  it('refuses a FIFO without blocking, and an oversized file unread', () => {
    const dir = privateDir();
    execFileSync('mkfifo', [join(dir, 'fifo.servicedef')]);
    writeFileSync(join(dir, 'huge.servicedef'), new Uint8Array(MAX_SERVICEDEF_BYTES + 1));
    const out = loadServicedefs(dir);
    expect(out.errors.map((e) => [e.file, e.code])).toEqual([
      [join(dir, 'fifo.servicedef'), 'UNREADABLE'],
      [join(dir, 'huge.servicedef'), 'UNREADABLE'],
    ]);
    expect(out.errors[0]?.message).toContain('not a regular file');
    expect(out.errors[1]?.message).toContain('cap');
  });

  it('a service defined in JSON and in a .servicedef: the JSON one stays, the error names both files', () => {
    const dir = privateDir();
    copyFileSync(join(fixtures, 'demo-echo.servicedef'), join(dir, 'demo-echo.servicedef'));
    const json = {
      services: [
        parseServiceDefinition(
          { name: 'demo-echo', version: '1.0.0', command: '/bin/true' },
          '/cfg/services.json',
        ),
        parseServiceDefinition(
          { name: 'other', version: '1.0.0', command: '/bin/true' },
          '/cfg/o.json',
        ),
      ],
      errors: [],
    };
    const merged = mergeServicedefs(json, loadServicedefs(dir));
    expect(merged.services.map((s) => s.source)).toEqual(['/cfg/services.json', '/cfg/o.json']);
    expect(merged.errors).toHaveLength(1);
    expect(merged.errors[0]).toMatchObject({
      code: 'DUPLICATE_SERVICE',
      file: join(dir, 'demo-echo.servicedef'),
      firstFile: '/cfg/services.json',
    });
    expect(merged.errors[0]?.message).toContain('/cfg/services.json');
  });
});
