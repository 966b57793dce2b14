// fast-check arbitraries the scaffold's property tests share.

import { nameProblem } from '@handoff/create-daemon/rename';
import fc from 'fast-check';

const letters = 'abcdefghijklmnopqrstuvwxyz'.split('');
const alnum = [...letters, ...'0123456789'.split('')];

/** Words of a-z0-9 joined by single hyphens, the first starting with a letter. */
export const validName = fc
  .tuple(
    fc.constantFrom(...letters),
    fc.string({ unit: fc.constantFrom(...alnum), maxLength: 8 }),
    fc.array(fc.string({ unit: fc.constantFrom(...alnum), minLength: 1, maxLength: 6 }), {
      maxLength: 3,
    }),
  )
  .map(([first, rest, words]) => [first + rest, ...words].join('-'))
  // Length, the -daemon suffix and reserved words: rules on top of the grammar.
  .filter((name) => nameProblem(name) === undefined);

/** Ids in the private-use range. */
export const privateId = fc.integer({ min: 0xf000, max: 0xffff });
