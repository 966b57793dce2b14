// Who may run a broker as root: the rule in refuseRoot, for any euid (the
// real refusal, as root, is root-refusal.int.test.ts).
import { describe, expect, it } from 'vitest';
import { ALLOW_ROOT_ENV, RootRefusalError, refuseRoot } from '../src/root-refusal.js';

const refusal = (fn: () => void): RootRefusalError | null => {
  try {
    fn();
    return null;
  } catch (error) {
    return error as RootRefusalError;
  }
};

describe('refuseRoot', () => {
  it('refuses euid 0 without an opt-in, saying why and how to opt in', () => {
    const error = refusal(() => refuseRoot(undefined, {}, 0));
    expect(error).toBeInstanceOf(RootRefusalError);
    expect(error?.code).toBe('RUNNING_AS_ROOT');
    expect(error?.message).toMatch(
      /^refusing to run as root: a root broker spawns its daemons as root/,
    );
    expect(error?.message).toContain('--allow-root');
    expect(error?.message).toContain(`${ALLOW_ROOT_ENV}=1`);
  });

  it('lets any other euid run, opt-in or not', () => {
    expect(refusal(() => refuseRoot(undefined, {}, 1000))).toBeNull();
    expect(refusal(() => refuseRoot(false, {}, 1000))).toBeNull();
  });

  it('runs as root with allowRoot or HANDOFF_ALLOW_ROOT=1 (or true)', () => {
    expect(refusal(() => refuseRoot(true, {}, 0))).toBeNull();
    expect(refusal(() => refuseRoot(undefined, { [ALLOW_ROOT_ENV]: '1' }, 0))).toBeNull();
    expect(refusal(() => refuseRoot(undefined, { [ALLOW_ROOT_ENV]: 'true' }, 0))).toBeNull();
    expect(refusal(() => refuseRoot(undefined, { [ALLOW_ROOT_ENV]: '0' }, 0))).toBeInstanceOf(
      RootRefusalError,
    );
    expect(refusal(() => refuseRoot(undefined, { [ALLOW_ROOT_ENV]: '' }, 0))).toBeInstanceOf(
      RootRefusalError,
    );
  });

  it('an explicit allowRoot: false wins over the environment', () => {
    expect(refusal(() => refuseRoot(false, { [ALLOW_ROOT_ENV]: '1' }, 0))).toBeInstanceOf(
      RootRefusalError,
    );
  });
});
