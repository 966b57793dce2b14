import { afterEach, describe, expect, it, vi } from 'vitest';
import { SystemdNotifier } from '../../src/systemd/notify.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('SystemdNotifier', () => {
  it('is a no-op without NOTIFY_SOCKET (and never reports an error)', () => {
    const onError = vi.fn();
    const n = SystemdNotifier.fromEnv({ WATCHDOG_USEC: '100000' }, { onError });
    expect(n.enabled).toBe(false);
    expect(n.watchdogIntervalUsec).toBeNull();
    n.ready('x');
    n.status('y');
    n.reloading();
    n.stopping();
    n.startWatchdog();
    n.close();
    expect(onError).not.toHaveBeenCalled();
  });

  it('takes the variables out of the env it read', () => {
    const env: NodeJS.ProcessEnv = {
      NOTIFY_SOCKET: '@x',
      WATCHDOG_USEC: '1000',
      WATCHDOG_PID: '1',
      PATH: '/bin',
    };
    SystemdNotifier.fromEnv(env, { pid: 2 });
    expect(env).toEqual({ PATH: '/bin' });
  });

  it('honours WATCHDOG_PID: the watchdog is only for the pid it names', () => {
    const env = () => ({ NOTIFY_SOCKET: '/nonexistent/notify', WATCHDOG_USEC: '400000' });
    expect(SystemdNotifier.fromEnv(env(), { pid: 7 }).watchdogIntervalUsec).toBe(400000);
    expect(
      SystemdNotifier.fromEnv({ ...env(), WATCHDOG_PID: '7' }, { pid: 7 }).watchdogIntervalUsec,
    ).toBe(400000);
    expect(
      SystemdNotifier.fromEnv({ ...env(), WATCHDOG_PID: '8' }, { pid: 7 }).watchdogIntervalUsec,
    ).toBeNull();
    expect(
      SystemdNotifier.fromEnv({ ...env(), WATCHDOG_USEC: 'soon' }, { pid: 7 }).watchdogIntervalUsec,
    ).toBeNull();
  });

  it('reports a failing socket once, never throws, and its watchdog timer stops on close', () => {
    vi.useFakeTimers();
    const onError = vi.fn();
    const n = SystemdNotifier.fromEnv(
      { NOTIFY_SOCKET: '/nonexistent/notify.sock', WATCHDOG_USEC: '200000' },
      { onError, pid: process.pid },
    );
    expect(() => n.ready('serving')).not.toThrow();
    n.startWatchdog();
    vi.advanceTimersByTime(1000);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]![0]).toMatchObject({ code: 'ENOENT' });
    expect(vi.getTimerCount()).toBe(1);
    n.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
