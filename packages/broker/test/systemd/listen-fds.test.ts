import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SocketActivationError } from '../../src/systemd/errors.js';
import {
  closeUnused,
  parseListenFds,
  pickBrokerFd,
  unsetListenEnv,
} from '../../src/systemd/listen-fds.js';
import { MANAGER_ENV_KEYS, withoutManagerEnv } from '../../src/systemd/manager-env.js';

const PID = 4242;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SocketActivationError);
    return (error as SocketActivationError).code;
  }
  return undefined;
}

describe('parseListenFds', () => {
  it('reads fds from 3 with their names', () => {
    expect(
      parseListenFds(
        { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'broker:admin' },
        PID,
      ),
    ).toEqual([
      { fd: 3, name: 'broker' },
      { fd: 4, name: 'admin' },
    ]);
    expect(parseListenFds({ LISTEN_PID: String(PID), LISTEN_FDS: '1' }, PID)).toEqual([
      { fd: 3, name: 'unknown' },
    ]);
  });

  it('is null without the variables or when they name another process', () => {
    expect(parseListenFds({}, PID)).toBeNull();
    expect(parseListenFds({ LISTEN_FDS: '1' }, PID)).toBeNull();
    expect(parseListenFds({ LISTEN_PID: '1', LISTEN_FDS: '1' }, PID)).toBeNull();
  });

  it('rejects malformed variables meant for us with BAD_LISTEN_FDS', () => {
    expect(code(() => parseListenFds({ LISTEN_PID: 'x', LISTEN_FDS: '1' }, PID))).toBe(
      'BAD_LISTEN_FDS',
    );
    expect(code(() => parseListenFds({ LISTEN_PID: String(PID), LISTEN_FDS: '-1' }, PID))).toBe(
      'BAD_LISTEN_FDS',
    );
    expect(
      code(() =>
        parseListenFds({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'a' }, PID),
      ),
    ).toBe('BAD_LISTEN_FDS');
  });

  it('property: any count with matching names parses to consecutive fds from 3; never throws anything untyped', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z]{1,8}$/), { maxLength: 20 }), (names) => {
        const got = parseListenFds(
          {
            LISTEN_PID: String(PID),
            LISTEN_FDS: String(names.length),
            LISTEN_FDNAMES: names.join(':'),
          },
          PID,
        );
        expect(got).toEqual(names.map((name, i) => ({ fd: 3 + i, name })));
      }),
    );
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.option(fc.string()), (pid, fds, names) => {
        const env: NodeJS.ProcessEnv = { LISTEN_PID: pid, LISTEN_FDS: fds };
        if (names !== null) env.LISTEN_FDNAMES = names;
        try {
          parseListenFds(env, PID);
        } catch (error) {
          expect(error).toBeInstanceOf(SocketActivationError);
        }
      }),
    );
  });
});

describe('pickBrokerFd', () => {
  it('takes the one named broker, else the only one', () => {
    expect(
      pickBrokerFd([
        { fd: 3, name: 'other' },
        { fd: 4, name: 'broker' },
      ]),
    ).toEqual({ fd: 4, name: 'broker' });
    expect(pickBrokerFd([{ fd: 3, name: 'unknown' }])).toEqual({ fd: 3, name: 'unknown' });
  });

  it('refuses to guess among several unnamed fds', () => {
    expect(
      code(() =>
        pickBrokerFd([
          { fd: 3, name: 'a' },
          { fd: 4, name: 'b' },
        ]),
      ),
    ).toBe('BAD_LISTEN_FDS');
  });
});

describe('the manager environment', () => {
  it('unsetListenEnv removes LISTEN_* and nothing else', () => {
    const env: NodeJS.ProcessEnv = {
      LISTEN_PID: '1',
      LISTEN_FDS: '1',
      LISTEN_FDNAMES: 'broker',
      PATH: '/bin',
    };
    unsetListenEnv(env);
    expect(env).toEqual({ PATH: '/bin' });
  });

  it('withoutManagerEnv copies the env without any systemd variable', () => {
    const env: NodeJS.ProcessEnv = { PATH: '/bin' };
    for (const key of MANAGER_ENV_KEYS) env[key] = 'x';
    expect(withoutManagerEnv(env)).toEqual({ PATH: '/bin' });
    expect(env.NOTIFY_SOCKET).toBe('x');
  });

  it('closeUnused leaves the chosen fd alone', () => {
    const chosen = { fd: 3, name: 'broker' };
    expect(() => closeUnused([chosen], chosen)).not.toThrow();
  });
});
