// FdPassError: the brand that keeps `instanceof` true across two loaded
// copies of the package, and fromNative's conversion of what the addon throws.
import { describe, expect, it } from 'vitest';
import * as one from '../src/errors.js';

/** A second, separately evaluated copy of errors.ts (the query makes it a new module). */
async function secondCopy(): Promise<typeof one> {
  const url = '../src/errors.js?copy=2';
  return (await import(/* @vite-ignore */ url)) as typeof one;
}

describe('FdPassError', () => {
  it('instanceof holds across two loaded copies, both ways, and keeps code', async () => {
    const two = await secondCopy();
    expect(two.FdPassError).not.toBe(one.FdPassError);
    const fromTwo = new two.FdPassError('ERR_SOCKET_CLOSED', 'closed', { errno: 9 });
    expect(fromTwo).toBeInstanceOf(one.FdPassError);
    expect(fromTwo).toBeInstanceOf(Error);
    expect(fromTwo.code).toBe('ERR_SOCKET_CLOSED');
    expect(fromTwo.errno).toBe(9);
    expect(new one.FdPassError('EAGAIN', 'again')).toBeInstanceOf(two.FdPassError);
    expect(one.FdPassError.brand).toBe('@handoff/fdpass:FdPassError');
  });

  it('is not fooled by look-alikes', () => {
    expect(new Error('plain')).not.toBeInstanceOf(one.FdPassError);
    expect({ code: 'EAGAIN', name: 'FdPassError' }).not.toBeInstanceOf(one.FdPassError);
    expect(null).not.toBeInstanceOf(one.FdPassError);
    expect('FdPassError').not.toBeInstanceOf(one.FdPassError);
  });

  it('a subclass with a brand of its own is told apart from its base', () => {
    class Narrow extends one.FdPassError {
      static override readonly brand: string = '@handoff/fdpass-test:Narrow';
    }
    class Unbranded extends one.FdPassError {}
    const narrow = new Narrow('ERR_INVALID_FD', 'narrow');
    expect(narrow).toBeInstanceOf(Narrow);
    expect(narrow).toBeInstanceOf(one.FdPassError);
    expect(new one.FdPassError('ERR_INVALID_FD', 'base')).not.toBeInstanceOf(Narrow);
    expect(new Unbranded('ERR_INVALID_FD', 'u')).toBeInstanceOf(Unbranded);
    expect(narrow).not.toBeInstanceOf(Unbranded);
  });
});

describe('fromNative', () => {
  it('wraps a thrown non-Error in a typed FdPassError (ERR_NATIVE) with it as cause', () => {
    const err = one.fromNative('boom', 'fd 3');
    expect(err).toBeInstanceOf(one.FdPassError);
    expect((err as one.FdPassError).code).toBe('ERR_NATIVE');
    expect(err.message).toContain('boom');
    expect(err.message).toContain('fd 3');
    expect(err.cause).toBe('boom');
  });

  it('turns syscall failures into errno codes and passes TypeErrors and Errors through', () => {
    const sys = one.fromNative({ errno: 9, syscall: 'fcntl', code: 'EBADF' }, 'fd 99');
    expect(sys).toMatchObject({ code: 'EBADF', errno: 9, syscall: 'fcntl' });
    expect(sys).toBeInstanceOf(one.FdPassError);
    const usage = new TypeError('Usage: x');
    expect(one.fromNative(usage)).toBe(usage);
    const plain = new Error('already an Error');
    expect(one.fromNative(plain)).toBe(plain);
  });
});
