// reload-state.ts: a reload with problems keeps the last good definitions
// and is remembered until a clean reload; status renders it.
import { describe, expect, it } from 'vitest';
import {
  EMBEDDED_SOURCE,
  parseServiceDefinition,
  ServiceConfigError,
} from '../../src/config/definition.js';
import {
  ConfigReloadKeeper,
  keptMessage,
  reloadStatusJson,
  reloadStatusRows,
} from '../../src/config/reload-state.js';
import { base } from './fixtures.js';

const one = parseServiceDefinition(base, '/cfg/a.json');
const two = parseServiceDefinition({ ...base, name: 'other' }, '/cfg/b.json');
const syntax = new ServiceConfigError('INVALID_JSON', '/cfg/b.json', 'is not JSON: x', {
  line: 3,
  column: 7,
});

describe('ConfigReloadKeeper', () => {
  it('takes the first load as it is, even with problems', () => {
    const keeper = new ConfigReloadKeeper();
    const first = keeper.accept({ services: [one], errors: [syntax] }, 1000);
    expect(first).toEqual({ services: [one], failure: null });
    expect(keeper.status()).toEqual({ loadedAtUnixMs: 1000, definitions: 1, failure: null });
  });

  it('keeps the last good set on a failed reload, until a clean one clears it', () => {
    const keeper = new ConfigReloadKeeper();
    keeper.accept({ services: [one, two], errors: [] }, 1000);
    const failed = keeper.accept({ services: [one], errors: [syntax] }, 2000);
    expect(failed.services).toEqual([one, two]);
    expect(failed.failure).toEqual({
      atUnixMs: 2000,
      code: 'INVALID_JSON',
      file: '/cfg/b.json',
      line: 3,
      column: 7,
      message: '/cfg/b.json:3:7: is not JSON: x',
      problems: 1,
      keptDefinitions: 2,
      keptSinceUnixMs: 1000,
    });
    expect(keptMessage(failed.failure!)).toBe(
      'config reload failed: /cfg/b.json:3:7: is not JSON: x; keeping 2 definitions from 1970-01-01T00:00:01.000Z',
    );
    expect(keeper.status().failure).toEqual(failed.failure);
    const fixed = keeper.accept({ services: [two], errors: [] }, 3000);
    expect(fixed).toEqual({ services: [two], failure: null });
    expect(keeper.status()).toEqual({ loadedAtUnixMs: 3000, definitions: 1, failure: null });
  });

  it('does not count problems in embedded definitions, which no reload can fix', () => {
    const keeper = new ConfigReloadKeeper();
    const embedded = new ServiceConfigError('INVALID_DEFINITION', EMBEDDED_SOURCE, 'bad');
    keeper.accept({ services: [one], errors: [embedded] }, 1000);
    expect(keeper.accept({ services: [two], errors: [embedded] }, 2000)).toEqual({
      services: [two],
      failure: null,
    });
  });
});

describe('status rendering', () => {
  it('JSON: config_reload with ok, failure and what is kept', () => {
    const keeper = new ConfigReloadKeeper();
    keeper.accept({ services: [one], errors: [] }, 1000);
    expect(reloadStatusJson(keeper.status())).toEqual({
      config_reload: { ok: true, loaded_at_unix_ms: 1000, definitions: 1, failure: null },
    });
    keeper.accept({ services: [], errors: [syntax] }, 2000);
    expect(reloadStatusJson(keeper.status())).toMatchObject({
      config_reload: {
        ok: false,
        failure: { file: '/cfg/b.json', line: 3, column: 7, kept_definitions: 1 },
      },
    });
    expect(reloadStatusRows(keeper.status())).toEqual([
      [
        'config',
        'RELOAD FAILED 1970-01-01T00:00:02.000Z: /cfg/b.json:3:7: is not JSON: x; keeping 1 definitions from 1970-01-01T00:00:01.000Z',
      ],
    ]);
    expect(reloadStatusJson(undefined)).toEqual({});
  });
});
