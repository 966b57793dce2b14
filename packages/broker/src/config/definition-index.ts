// The definitions of one service name, found without scanning them all:
// selectDefinition runs on every Hello, and a broker with 10,000 definitions
// spent ~70 µs of each Hello filtering the whole list by name. The index is
// built once per definitions array (the broker replaces its array on reload,
// never edits it) and kept beside it in a WeakMap.
import type { ServiceDefinition } from './definition.js';

interface NameIndex {
  /** The array's length when indexed: a list edited in place is indexed again. */
  readonly length: number;
  readonly byName: Map<string, ServiceDefinition[]>;
}

const indexes = new WeakMap<readonly ServiceDefinition[], NameIndex>();
const NONE: readonly ServiceDefinition[] = Object.freeze([]);

function build(definitions: readonly ServiceDefinition[]): NameIndex {
  const byName = new Map<string, ServiceDefinition[]>();
  for (const definition of definitions) {
    const named = byName.get(definition.name);
    if (named) named.push(definition);
    else byName.set(definition.name, [definition]);
  }
  const index = { length: definitions.length, byName };
  indexes.set(definitions, index);
  return index;
}

/** The definitions named `name`, in list order (as `filter` would give them). */
export function definitionsNamed(
  definitions: readonly ServiceDefinition[],
  name: string,
): readonly ServiceDefinition[] {
  let index = indexes.get(definitions);
  if (index === undefined || index.length !== definitions.length) index = build(definitions);
  return index.byName.get(name) ?? NONE;
}
