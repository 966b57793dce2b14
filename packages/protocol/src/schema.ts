// The protobufjs-generated v1 schema as the message values see it: lookup of
// one generated type by name, its fully qualified proto name, and the shared
// empty-bytes default. The shapes and codecs themselves live elsewhere.
import { SchemaError } from './errors.js';
import { running_process } from './generated/broker_v1.js';
import type { GeneratedType } from './message-type.js';

const gen = running_process.broker.v1 as unknown as Record<string, GeneratedType>;

export const generated = (name: string): GeneratedType => {
  const type = gen[name];
  if (!type) {
    throw new SchemaError(
      'GENERATED_CODE_MISSING',
      `generated code lacks ${name}: run npm run generate`,
    );
  }
  return type;
};

export const typeName = (name: string) => `running_process.broker.v1.${name}`;

// One shared zero-length array for every empty bytes default: it has no
// element anyone could write, and allocating one per field is measurable.
const EMPTY_BYTES = Object.freeze(new Uint8Array(0)) as Uint8Array;
export const empty = () => EMPTY_BYTES;
