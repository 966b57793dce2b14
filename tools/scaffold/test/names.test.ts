import { MAX_NAME_LENGTH, nameForms, nameProblem } from '@handoff/create-daemon/rename';
import { validateServiceName } from '@handoff/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nameConflict } from '../src/names.js';
import type { WorkspaceFacts } from '../src/workspace.js';
import { validName } from './arbitraries.js';

describe('nameForms', () => {
  it('spells a name every way the generated code needs', () => {
    expect(nameForms('sensor-hub-24')).toEqual({
      kebab: 'sensor-hub-24',
      snake: 'sensor_hub_24',
      pascal: 'SensorHub24',
      camel: 'sensorHub24',
      upperSnake: 'SENSOR_HUB_24',
    });
    expect(nameForms('cache')).toEqual({
      kebab: 'cache',
      snake: 'cache',
      pascal: 'Cache',
      camel: 'cache',
      upperSnake: 'CACHE',
    });
  });

  it('maps every valid name to identifiers, a proto package and a service name the broker accepts', () => {
    fc.assert(
      fc.property(validName, (name) => {
        const forms = nameForms(name);
        expect(forms.pascal).toMatch(/^[A-Z][A-Za-z0-9]*$/);
        expect(forms.camel).toMatch(/^[a-z][A-Za-z0-9]*$/);
        expect(forms.upperSnake).toMatch(/^[A-Z][A-Z0-9_]*$/);
        // A proto package component and a pbjs root: letters, digits, underscores.
        expect(forms.snake).toMatch(/^[a-z][a-z0-9_]*$/);
        expect(validateServiceName(forms.kebab).ok).toBe(true);
        // Nothing is lost: the snake spelling leads back to the name.
        expect(forms.snake.replace(/_/g, '-')).toBe(name);
      }),
    );
  });
});

describe('nameProblem', () => {
  it('accepts names made of lowercase words, digits and single hyphens', () => {
    for (const name of ['cache', 'sensor-hub', 'a', 'x1', 'hub-2', 'a'.repeat(MAX_NAME_LENGTH)]) {
      expect(nameProblem(name), name).toBeUndefined();
    }
  });

  it.each([
    ['', /empty/],
    ['Sensor', /must start with a lowercase letter/],
    ['sensor_hub', /only lowercase letters, digits and hyphens/],
    ['1hub', /must start with a lowercase letter/],
    ['-hub', /must start with a lowercase letter/],
    ['hub-', /ends with a hyphen/],
    ['sensor--hub', /double hyphen/],
    ['sensor hub', /only lowercase letters/],
    ['a'.repeat(MAX_NAME_LENGTH + 1), /at most 24, so the daemon's socket path/],
    ['sensor-daemon', /ends in -daemon: drop it/],
    ['delete', /JavaScript reserved word/],
    ['package', /JavaScript reserved word/],
    ['handoff', /reserved: the generated protobuf namespace/],
  ])('rejects %j', (name, message) => {
    expect(nameProblem(name)).toMatch(message);
  });

  it('never accepts a name outside the grammar', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (name) => {
        if (nameProblem(name) !== undefined) return;
        expect(name).toMatch(/^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$/);
        expect(name.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
        expect(name.endsWith('-daemon')).toBe(false);
      }),
    );
  });

  it('rejects any valid name spoiled by one bad character', () => {
    const bad = fc.constantFrom('_', '.', '/', ' ', 'A', 'Z', 'é', '\n', '\0', '--');
    fc.assert(
      fc.property(validName, bad, fc.nat(), (name, char, at) => {
        const i = at % (name.length + 1);
        const spoiled = name.slice(0, i) + char + name.slice(i);
        expect(nameProblem(spoiled)).toBeDefined();
      }),
    );
  });
});

describe('nameConflict', () => {
  const facts: WorkspaceFacts = {
    root: '/repo',
    appEntries: ['demo-daemon', 'notes.txt'],
    protocolIds: [],
    projects: [
      {
        group: 'apps',
        dir: 'demo-daemon',
        packageName: '@handoff/demo-daemon',
        bins: ['demo-kv', 'demo-daemon'],
        service: 'demo-kv',
      },
      {
        group: 'packages',
        dir: 'broker',
        packageName: '@handoff/broker',
        bins: ['handoff-broker'],
        service: undefined,
      },
      {
        group: 'tools',
        dir: 'bench',
        packageName: '@handoff/benchmarks',
        bins: [],
        service: undefined,
      },
    ],
  };

  it.each([
    ['demo-daemon', 'apps/demo-daemon already exists; nothing was changed'],
    ['notes.txt', 'apps/notes.txt already exists; nothing was changed'],
    ['broker', 'packages/broker already has that name; a new daemon needs one no workspace uses'],
    ['bench', 'tools/bench already has that name; a new daemon needs one no workspace uses'],
    ['benchmarks', 'the package name @handoff/benchmarks is taken by tools/bench'],
    ['demo-kv', 'the service name demo-kv is taken by apps/demo-daemon'],
    ['demo', 'the executable demo-daemon is taken by apps/demo-daemon'],
    ['handoff-broker', 'the executable handoff-broker is taken by packages/broker'],
  ])('refuses %j: %s', (name, message) => {
    expect(nameConflict(name, facts)).toBe(message);
  });

  it('lets a free name through', () => {
    expect(nameConflict('sensor-hub', facts)).toBeUndefined();
  });
});
