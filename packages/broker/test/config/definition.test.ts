// parseServiceDefinition: reading and validating one definition object.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EMBEDDED_SOURCE,
  parseServiceDefinition,
  ServiceConfigError,
} from '../../src/config/definition.js';
import { base } from './fixtures.js';

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
      readyTimeoutMs: 8_000,
      stopGraceMs: 5_000,
      restartOnChange: false,
      drainMs: 30_000,
      replacementNice: 10,
      fdStoreMax: 16,
      fdStoreMaxAgeSecs: 60,
      ownSocket: true,
      logMaxBytes: 10 * 1024 * 1024,
      logFiles: 3,
      source: '/cfg/demo.json',
    });
    expect(Object.isFrozen(d) && Object.isFrozen(d.args) && Object.isFrozen(d.env)).toBe(true);
    expect('cwd' in d || 'minVersion' in d || 'idleTimeoutSecs' in d || 'entryScript' in d).toBe(
      false,
    );
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
      restartOnChange: true,
      entryScript: '/srv/demo/main.js',
      drainMs: 0,
      replacementNice: 19,
      fdStoreMax: 0,
      fdStoreMaxAgeSecs: 1,
      ownSocket: false,
      logMaxBytes: 4096,
      logFiles: 0,
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
    [{ ...base, restartOnChange: 1 }, 'restartOnChange', /true or false, not a number/],
    [{ ...base, entryScript: 'main.js' }, 'entryScript', /must be an absolute path/],
    [{ ...base, drainMs: -1 }, 'drainMs', /integer from 0/],
    [{ ...base, replacementNice: -1 }, 'replacementNice', /integer from 0 to 19/],
    [{ ...base, replacementNice: 20 }, 'replacementNice', /integer from 0 to 19/],
    [{ ...base, replacementNice: 'low' }, 'replacementNice', /not "low"/],
    [{ ...base, fdStoreMax: 254 }, 'fdStoreMax', /integer from 0 to 253/],
    [{ ...base, fdStoreMaxAgeSecs: 0 }, 'fdStoreMaxAgeSecs', /integer from 1/],
    [{ ...base, ownSocket: 'no' }, 'ownSocket', /true or false/],
    [{ ...base, logMaxBytes: 100 }, 'logMaxBytes', /integer from 4096/],
    [{ ...base, logFiles: 101 }, 'logFiles', /integer from 0 to 100/],
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
