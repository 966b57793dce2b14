// The base every handoff package's errors build on: a stable `code`, and a
// brand that makes `instanceof` answer correctly when two copies of a package
// are loaded (two versions in one node_modules tree, or a bundled copy beside
// an installed one). Prototype identity differs between copies; a
// `Symbol.for` key does not, so the check reads the brand instead.

/** The shape every branded class has: its brand is `'<package>:<ClassName>'`. */
export interface BrandedErrorClass {
  readonly brand: string;
}

/**
 * Extend it once per package (e.g. `class ProtocolError extends BrandedError`)
 * and give that class, and every class below it, its own static `brand`.
 * A class without its own brand falls back to plain prototype checks.
 * Subclasses narrow `code` with a `declare` of its type, never a re-declared
 * field, which would reset it to `undefined` after `super()`.
 */
export abstract class BrandedError extends Error {
  static readonly brand: string = '@handoff/protocol:BrandedError';

  /** What callers switch on; stable across releases and listed in each README. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    // Mark the instance with the brand of its class and of each class above
    // it, so `err instanceof BaseOfPackage` holds across copies too.
    for (
      let c: unknown = new.target;
      typeof c === 'function' && c !== Error;
      c = Object.getPrototypeOf(c)
    ) {
      if (Object.hasOwn(c, 'brand')) {
        Object.defineProperty(this, Symbol.for((c as unknown as BrandedErrorClass).brand), {
          value: true,
        });
      }
    }
  }

  // `this` is the class on the right of `instanceof` (a subclass, usually),
  // which is the whole point: naming BrandedError here would check the wrong brand.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: the checked class is `this`, not BrandedError
    const checked = this as BrandedErrorClass;
    if (!Object.hasOwn(checked, 'brand')) {
      return Function.prototype[Symbol.hasInstance].call(checked, value);
    }
    if (typeof value !== 'object' || value === null) return false;
    return (value as Record<symbol, unknown>)[Symbol.for(checked.brand)] === true;
  }
}
