// The machinery behind every exported message value (`Frame`, `Hello`, …):
// it adapts the protobufjs-generated static code to our API — plain objects
// with every field present, `bigint` for 64-bit fields, canonical encoding
// (defaults omitted, ascending field numbers) and typed decode errors.
import type protobuf from 'protobufjs/minimal.js';
import { FramingError } from './errors.js';
import { bigIntReader, releaseWriter, takeWriter } from './wire-io.js';

/** What the generated static code offers per message. */
export interface GeneratedType {
  encode(message: object, writer?: protobuf.Writer): protobuf.Writer;
  decode(
    reader: protobuf.Reader | Uint8Array,
    length?: number,
    end?: number,
    depth?: number,
    target?: object,
  ): object;
}

/** A message value: create, encode and decode one message type. */
export interface MessageType<T extends object> {
  /** Fully qualified proto name, e.g. `running_process.broker.v1.Frame`. */
  readonly typeName: string;
  /** A message with every field at its default, overridden by `partial`. */
  create(partial?: Partial<T>): T;
  /** Canonical protobuf encoding; missing fields count as defaults. */
  encode(message: Partial<T>): Uint8Array;
  /** Decodes exactly `bytes`; unknown fields are skipped; throws FramingError DECODE. */
  decode(bytes: Uint8Array): T;
  /** @internal Converts to the shape the generated encoder expects. */
  toWire(message: Partial<T>): object;
  /** @internal Converts a generated decode result to our shape. */
  fromWire(decoded: object): T;
  /** @internal The generated decoder, bypassing any hand-written one (for differential tests). */
  decodeGenerated(bytes: Uint8Array): T;
  /** @internal Encodes into an existing writer (used by the framer). */
  encodeInto(message: Partial<T>, writer: protobuf.Writer): void;
}

type Fields = Record<string, unknown>;

export interface MessageSpec<T extends object> {
  typeName: string;
  generated: GeneratedType;
  /** Proto3 defaults: what decode starts from. A fresh object each call. */
  defaults(): T;
  /** Defaults for `create()` where they differ from the wire defaults. */
  createDefaults?: () => Partial<T>;
  /** 64-bit fields: 0n must be left out to keep the encoding canonical. */
  u64?: readonly (keyof T & string)[];
  /** Singular sub-message fields and their types. */
  nested?: { readonly [K in keyof T & string]?: MessageType<object> };
  /**
   * Marker properties the generated decoder sets for proto3 `optional`
   * fields (a synthetic oneof such as `_idleTimeoutSecs`); removed again.
   */
  synthetic?: readonly string[];
  /**
   * A hand-written decoder to use instead of the generated one (same
   * results). It may return `undefined` to leave these bytes to the
   * generated decoder: a shape too rare on the hot path to write by hand.
   */
  decode?: (bytes: Uint8Array) => T | undefined;
  /** A hand-written encoder to use instead of the generated one (same bytes). */
  encode?: (message: Partial<T>) => Uint8Array;
  /** Replaces the generic conversion, for oneofs. */
  toWire?: (message: Partial<T>) => object;
  fromWire?: (decoded: object) => T;
}

export function defineMessage<T extends object>(spec: MessageSpec<T>): MessageType<T> {
  const u64 = spec.u64 ?? [];
  const nested = Object.entries(spec.nested ?? {}) as [string, MessageType<object>][];

  const toWire =
    spec.toWire ??
    ((message: Partial<T>): object => {
      // Copy on first write only: most messages pass through untouched.
      let out = message as Fields;
      for (let i = 0; i < u64.length; i++) {
        const key = u64[i]!;
        if (out[key] === 0n) {
          if (out === message) out = { ...out };
          out[key] = undefined;
        }
      }
      for (const [key, type] of nested) {
        const value = out[key];
        if (value === undefined || value === null) continue;
        const wire = type.toWire(value as object);
        if (wire !== value) {
          if (out === message) out = { ...out };
          out[key] = wire;
        }
      }
      return out;
    });

  const fieldCount = Object.keys(spec.defaults()).length;
  // Generic path: decode straight into an object pre-filled with our
  // defaults, then convert sub-messages. The generated decoder deletes a
  // field it reads as an explicit zero (legal, never canonical), so a
  // short key count means some default has to be put back.
  const synthetic = spec.synthetic ?? [];
  const complete = (out: Fields): T => {
    for (const key of synthetic) delete out[key];
    for (const [key, type] of nested) {
      const value = out[key];
      if (value !== undefined && value !== null) out[key] = type.fromWire(value as object);
    }
    if (ownKeyCount(out) !== fieldCount) {
      const defaults = spec.defaults() as Fields;
      for (const key of Object.keys(defaults)) if (!(key in out)) out[key] = defaults[key];
    }
    return out as T;
  };
  const fromWire =
    spec.fromWire ??
    ((decoded: object): T => {
      const out = spec.defaults() as Fields;
      const src = decoded as Fields;
      for (const key of Object.keys(src)) out[key] = src[key];
      return complete(out);
    });
  const custom = spec.fromWire !== undefined;
  const decodeError = (cause: unknown) =>
    new FramingError(
      'DECODE',
      `cannot decode ${spec.typeName}: ${(cause as Error)?.message ?? String(cause)}`,
      { typeName: spec.typeName },
      { cause },
    );

  const type: MessageType<T> = {
    typeName: spec.typeName,
    create(partial) {
      return Object.assign(spec.defaults(), spec.createDefaults?.(), partial);
    },
    encode(message) {
      if (spec.encode) return spec.encode(message);
      const writer = takeWriter();
      try {
        spec.generated.encode(toWire(message), writer);
        return writer.finish();
      } finally {
        releaseWriter(writer);
      }
    },
    decode(bytes) {
      if (spec.decode) {
        let out: T | undefined;
        try {
          out = spec.decode(bytes);
        } catch (cause) {
          throw decodeError(cause);
        }
        if (out !== undefined) return out;
      }
      const target = custom ? undefined : spec.defaults();
      let decoded: object;
      try {
        decoded = spec.generated.decode(bigIntReader(bytes), undefined, undefined, 0, target);
      } catch (cause) {
        throw decodeError(cause);
      }
      return custom ? fromWire(decoded) : complete(decoded as Fields);
    },
    toWire,
    fromWire: (decoded) => fromWire(decoded),
    decodeGenerated(bytes) {
      return custom
        ? fromWire(spec.generated.decode(bigIntReader(bytes)))
        : complete(
            spec.generated.decode(
              bigIntReader(bytes),
              undefined,
              undefined,
              0,
              spec.defaults(),
            ) as Fields,
          );
    },
    encodeInto(message, writer) {
      spec.generated.encode(toWire(message), writer);
    },
  };
  return type;
}

/**
 * How many keys `out` has, counted without the array Object.keys makes:
 * every decoded message is counted, and that array was a measurable share
 * of what decoding a Hello allocates. `out` is one of our defaults objects
 * (a plain literal, nothing enumerable inherited), so for-in sees its own
 * keys only; an Object.hasOwn per key would cost four times the array.
 */
function ownKeyCount(out: object): number {
  let count = 0;
  for (const _ in out) count++;
  return count;
}
