// BrandedError's promise: `instanceof` holds between two loaded copies of a
// package's errors module (matched by brand, not prototype), and a subclass
// that declares no brand of its own falls back to plain prototype checks.
import { describe, expect, it } from 'vitest';
import { BrandedError } from '../src/branded-error.js';

type ErrorsModule = typeof import('../src/errors.js');

// A query string makes the module loader treat each as its own module: two
// copies of every class in src/errors.ts, as two installed copies would be.
// (TypeScript cannot resolve a query string, hence the expect-errors.)
const one = (await import(
  // @ts-expect-error
  '../src/errors.ts?copy=1'
)) as ErrorsModule;
const two = (await import(
  // @ts-expect-error
  '../src/errors.ts?copy=2'
)) as ErrorsModule;

class Unrelated extends BrandedError {
  static override readonly brand: string = '@handoff/test:Unrelated';
}

describe('BrandedError across two copies of a module', () => {
  it('loads two distinct copies', () => {
    expect(one.FramingError).not.toBe(two.FramingError);
    expect(one.ProtocolError).not.toBe(two.ProtocolError);
  });

  it('instanceof holds across copies for the class and for ProtocolError', () => {
    const err = new one.FramingError('DECODE', 'bad bytes');
    expect(err instanceof two.FramingError).toBe(true);
    expect(err instanceof two.ProtocolError).toBe(true);
    expect(new two.RegistryError('DUPLICATE_ID', 'taken', 7) instanceof one.RegistryError).toBe(
      true,
    );
    expect(new two.RegistryError('DUPLICATE_ID', 'taken', 7) instanceof one.ProtocolError).toBe(
      true,
    );
  });

  it('does not hold for an unrelated class, or a sibling class', () => {
    const err = new one.FramingError('DECODE', 'bad bytes');
    expect(err instanceof Unrelated).toBe(false);
    expect(err instanceof two.RegistryError).toBe(false);
    expect(new Unrelated('X', 'other') instanceof two.ProtocolError).toBe(false);
    expect(new Error('plain') instanceof two.ProtocolError).toBe(false);
    expect((null as unknown) instanceof two.ProtocolError).toBe(false);
  });

  it('a subclass without its own brand falls back to prototype checks', () => {
    class LocalOne extends one.ProtocolError {}
    class LocalTwo extends two.ProtocolError {}
    const err = new LocalOne('LOCAL', 'mine');
    expect(err instanceof LocalOne).toBe(true);
    expect(err instanceof LocalTwo).toBe(false);
    expect(new one.ProtocolError('LOCAL', 'base') instanceof LocalOne).toBe(false);
    // The branded classes above it still answer by brand.
    expect(err instanceof two.ProtocolError).toBe(true);
  });
});
