// The name index selectDefinition uses on every Hello: same answers as a
// scan of the list, built once per list, and rebuilt for a list edited in
// place (the broker replaces its list on reload, but nothing depends on it).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseServiceDefinition, type ServiceDefinition } from '../../src/config/definition.js';
import { definitionsNamed } from '../../src/config/definition-index.js';
import { selectDefinition } from '../../src/version-policy.js';

const def = (name: string, version: string): ServiceDefinition =>
  parseServiceDefinition({ name, version, command: '/usr/bin/true' }, `/cfg/${name}.json`);

describe('definitionsNamed', () => {
  it('gives what filtering by name gives, in list order', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom('a', 'b', 'c', 'd-e'),
            fc.constantFrom('1.0.0', '1.2.0', '2.0.0'),
          ),
          { maxLength: 30 },
        ),
        fc.constantFrom('a', 'b', 'c', 'd-e', 'zzz'),
        (pairs, name) => {
          const list = pairs.map(([n, v]) => def(n, v));
          expect(definitionsNamed(list, name)).toEqual(list.filter((d) => d.name === name));
        },
      ),
    );
  });

  it('answers an unknown name with nothing, and an empty list too', () => {
    expect(definitionsNamed([def('a', '1.0.0')], 'b')).toEqual([]);
    expect(definitionsNamed([], 'a')).toEqual([]);
  });

  it('indexes a list again when it grew or shrank in place', () => {
    const list = [def('a', '1.0.0')];
    expect(definitionsNamed(list, 'b')).toEqual([]);
    list.push(def('b', '1.0.0'));
    expect(definitionsNamed(list, 'b').map((d) => d.name)).toEqual(['b']);
    list.pop();
    expect(definitionsNamed(list, 'b')).toEqual([]);
  });

  it('keeps selectDefinition answering from 10,000 definitions as from one', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => def(`svc-${i}`, '1.0.0'));
    many.push(def('echo', '1.2.0'), def('echo', '1.5.0'));
    const one = [def('echo', '1.2.0'), def('echo', '1.5.0')];
    for (const wanted of ['1.0.0', '1.2.0', '1.5.0', '2.0.0']) {
      const a = selectDefinition(many, 'echo', wanted);
      const b = selectDefinition(one, 'echo', wanted);
      expect(a.ok ? a.definition.version : a.code).toEqual(b.ok ? b.definition.version : b.code);
    }
    const unknown = selectDefinition(many, 'nope', '1.0.0');
    expect(unknown.ok).toBe(false);
  });
});
