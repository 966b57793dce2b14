// routerSelect remembers selectDefinition's choices between Hellos: it must
// answer exactly as selectDefinition would for the definitions in force,
// follow a reload (a new array) at once, and refuse while the broker does.
import { ErrorCode } from '@handoff/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseServiceDefinition, type ServiceDefinition } from '../src/config/definition.js';
import { routerSelect } from '../src/router-context.js';
import { selectDefinition } from '../src/version-policy.js';

function def(name: string, version: string, extra: Record<string, unknown> = {}) {
  return parseServiceDefinition(
    { name, version, command: '/usr/bin/true', ...extra },
    `/cfg/${name}-${version}.json`,
  );
}

const arbName = fc.constantFrom('a', 'b', 'c');
const arbVersion = fc.constantFrom('1.0.0', '1.2.0', '1.10.3', '2.0.0', '0.3.1', '1.2.0-rc.1');
const arbDefinitions = fc.array(
  fc
    .tuple(arbName, arbVersion, fc.option(fc.constantFrom('1.1.0', '2.0.0'), { nil: undefined }))
    .map(([name, version, minVersion]) =>
      def(name, version, minVersion === undefined ? {} : { minVersion }),
    ),
  { maxLength: 6 },
);
const arbWanted = fc.oneof(arbVersion, fc.constantFrom('1.1.0', '3.0.0', 'x', ''));

describe('routerSelect', () => {
  it('answers as selectDefinition does, across reloads', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(arbDefinitions, fc.array(fc.tuple(arbName, arbWanted), { maxLength: 12 })),
          { minLength: 1, maxLength: 4 },
        ),
        (reloads) => {
          let current: readonly ServiceDefinition[] = [];
          const select = routerSelect(
            () => current,
            () => false,
          );
          // Each reload is a new array, as the broker makes one.
          for (const [definitions, hellos] of reloads) {
            current = [...definitions];
            for (const [name, wanted] of [...hellos, ...hellos])
              expect(select(name, wanted)).toEqual(selectDefinition(current, name, wanted));
          }
        },
      ),
    );
  });

  it('refuses SHUTTING_DOWN once the broker refuses, whatever it remembers', () => {
    const definitions = [def('a', '1.0.0')];
    let refusing = false;
    const select = routerSelect(
      () => definitions,
      () => refusing,
    );
    expect(select('a', '1.0.0')).toMatchObject({ ok: true });
    refusing = true;
    expect(select('a', '1.0.0')).toMatchObject({ ok: false, code: ErrorCode.SHUTTING_DOWN });
  });

  it('stays right while clients name more versions than it keeps', () => {
    const definitions = [def('a', '9.999.0')];
    const select = routerSelect(
      () => definitions,
      () => false,
    );
    for (let round = 0; round < 2; round++)
      for (let minor = 0; minor < 600; minor++) {
        const wanted = `9.${minor % 300}.0`;
        expect(select('a', wanted)).toEqual(selectDefinition(definitions, 'a', wanted));
      }
  });
});
