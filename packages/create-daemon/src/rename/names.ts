// A new daemon's name, sans-io: the rules a name must follow on its own, and
// every spelling the generated code needs (kebab, snake, PascalCase,
// camelCase, UPPER_SNAKE). Shared by create-daemon and the in-repo scaffold
// (tools/scaffold), which adds whether a workspace already has the name.

/**
 * Socket paths end in `<name>-<version>.sock` under the broker's directory,
 * and the generated integration tests put that directory in a temp dir
 * whose name holds the name too (`/tmp/handoff-<name>-int-XXXXXX/shared/
 * services/<name>-1.0.0.sock`: 52 bytes + twice the name). A Unix socket
 * path has 108 bytes with its NUL, so 24 keeps the tests inside it with
 * room for a longer TMPDIR; the broker's own rule allows 64.
 */
export const MAX_NAME_LENGTH = 24;

/** The broker's service-name alphabet, starting with a letter so every spelling is an identifier. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]*$/;

/**
 * A one-word name is its own snake and camel spelling, and those stand alone
 * in generated code: `const <snake> = {}` in the protobufjs module,
 * `namespace <snake>` in its declarations. So no JavaScript reserved word
 * (strict mode, as ES modules are) and no name a module cannot bind.
 */
const RESERVED_WORDS = new Set([
  ...'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield'.split(
    ' ',
  ),
  ...'let static implements interface package private protected public await arguments eval'.split(
    ' ',
  ),
]);

/**
 * Names the generated code cannot carry even though they are words: the
 * protobuf package is `handoff.<snake>.v1`, and an inner `handoff`
 * namespace would shadow the outer one in the generated declarations.
 */
const RESERVED_NAMES = new Map([
  ['handoff', 'the generated protobuf namespace would be handoff.handoff.v1, which shadows itself'],
]);

export interface NameForms {
  /** `sensor-hub`: the directory, the service, the package (`@handoff/…`), the client executable. */
  readonly kebab: string;
  /** `sensor_hub`: the proto package and file names, the pbjs root. */
  readonly snake: string;
  /** `SensorHub`: types and classes. */
  readonly pascal: string;
  /** `sensorHub`: functions. */
  readonly camel: string;
  /** `SENSOR_HUB`: constants. */
  readonly upperSnake: string;
}

/** Every spelling of a kebab-case name; the name is assumed valid (see nameProblem). */
export function nameForms(kebab: string): NameForms {
  const words = kebab.split('-');
  const capitalized = words.map((word) => word.charAt(0).toUpperCase() + word.slice(1));
  return {
    kebab,
    snake: words.join('_'),
    pascal: capitalized.join(''),
    camel: words[0] + capitalized.slice(1).join(''),
    upperSnake: words.join('_').toUpperCase(),
  };
}

/**
 * What is wrong with a name on its own, as a sentence; undefined when
 * nothing is. Usage errors: no workspace could make such a name right.
 */
export function nameProblem(name: string): string | undefined {
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  if (name.length === 0) return 'the name is empty';
  if (name.length > MAX_NAME_LENGTH) {
    return `${shown} is ${name.length} characters; at most ${MAX_NAME_LENGTH}, so the daemon's socket path (<broker dir>/services/<name>-<version>.sock) fits in a Unix socket address, in the generated tests too`;
  }
  if (!NAME_PATTERN.test(name)) {
    return `${shown} must start with a lowercase letter and hold only lowercase letters, digits and hyphens (the broker's service-name alphabet, [a-z0-9-])`;
  }
  if (name.includes('--')) return `${shown} has a double hyphen; use one between words`;
  if (name.endsWith('-')) return `${shown} ends with a hyphen`;
  if (name.endsWith('-daemon')) {
    return `${shown} ends in -daemon: drop it — the daemon's executable is <name>-daemon already, and the client's is <name>`;
  }
  if (RESERVED_WORDS.has(name)) {
    return `${shown} is a JavaScript reserved word, and the generated code uses a one-word name as an identifier`;
  }
  const reserved = RESERVED_NAMES.get(name);
  if (reserved !== undefined) return `${shown} is reserved: ${reserved}`;
  return undefined;
}
