// The environment a service manager (systemd) hands to the broker alone:
// notification socket, watchdog and socket-activation variables. Daemons the
// broker spawns must never inherit them (they would notify or adopt as if they were the broker).

/** Variables meant for the process systemd started, not its children. */
export const MANAGER_ENV_KEYS = [
  'NOTIFY_SOCKET',
  'WATCHDOG_USEC',
  'WATCHDOG_PID',
  'LISTEN_PID',
  'LISTEN_PIDFDID',
  'LISTEN_FDS',
  'LISTEN_FDNAMES',
] as const;

/** A copy of `env` without the manager's variables. */
export function withoutManagerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const key of MANAGER_ENV_KEYS) delete out[key];
  return out;
}
