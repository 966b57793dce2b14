// The base of every error create-daemon throws: a stable `code`, and a
// `Symbol.for` brand so `instanceof` holds across two loaded copies. The
// package installs with no dependencies (it runs under `npm create`), so it
// carries its own few lines of the mechanism @handoff/protocol's
// BrandedError implements for the other packages.

interface Branded {
  readonly brand: string;
}

export class CreateDaemonError extends Error {
  static readonly brand: string = '@handoff/create-daemon:CreateDaemonError';
  override readonly name: string = 'CreateDaemonError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; ) {
      if (Object.hasOwn(c, 'brand')) {
        Object.defineProperty(this, Symbol.for((c as unknown as Branded).brand), { value: true });
      }
      c = Object.getPrototypeOf(c);
    }
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: the class checked against is `this`, a subclass too
    const checked = this as Branded;
    if (!Object.hasOwn(checked, 'brand')) {
      return Function.prototype[Symbol.hasInstance].call(checked, value);
    }
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[Symbol.for(checked.brand)] === true
    );
  }
}
