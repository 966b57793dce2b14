// The systemd user units `handoff-broker install --systemd` writes: a
// .socket that owns the broker's well-known socket and a hardened .service
// that runs `serve` on it. Pure rendering from inputs; writing the files is
// src/cli/install.ts, adopting the socket and notifying is listen-fds.ts/notify.ts.
import { isAbsolute, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BrokerError } from '../errors.js';

export const SOCKET_UNIT = 'handoff-broker.socket';
export const SERVICE_UNIT = 'handoff-broker.service';

/**
 * The broker's default socket as a systemd specifier: %t is the user
 * manager's $XDG_RUNTIME_DIR, so this is the path defaultBrokerSocketPath()
 * gives clients (paths.ts).
 */
export const DEFAULT_UNIT_SOCKET = '%t/handoff/broker.sock';

/**
 * The broker's state directory (daemon logs) as a specifier: the XDG default
 * under %h. Not StateDirectory= or %S: for user units, older systemd (252,
 * Debian 12) puts those in $XDG_CONFIG_HOME, beside the service definitions.
 */
export const DEFAULT_UNIT_STATE_DIR = '%h/.local/state/handoff';

/** FileDescriptorName= of the listener; listen-fds.ts BROKER_FD_NAME adopts it by this name. */
export const UNIT_FD_NAME = 'broker';

/** WatchdogSec=: the broker pings at half of it (notify.ts), so a stuck event loop is restarted. */
export const DEFAULT_WATCHDOG_SEC = 30;

/**
 * Node flags the broker runs with: the service starts it with them, and so
 * does the handoff-broker executable (bin/handoff-broker, which
 * test/executable.int.test.ts holds to this list). V8 grows the young
 * generation's semi-spaces towards 16 MiB as a heap grows (10,000 service
 * definitions do it), and a Hello then touches pages not touched lately:
 * up to 1.6x the Hello p50 of a one-definition broker where a page fault
 * is dear (tools/bench capacity, the v8_defaults line). Capped at
 * 4 MiB, the Hello stays flat, throughput is about the same and the broker's
 * RSS is ~20 MB smaller. A successor started by `upgrade` inherits them
 * (upgrade/successor.ts passes process.execArgv on).
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** What TimeoutStopSec= allows beyond the broker's own hard exit deadline. */
const STOP_MARGIN_MS = 5_000;

export type UnitRenderErrorCode = 'INVALID_UNIT_INPUT';

/** An input no unit file can carry: a relative path, a newline, a bad number. */
export class UnitRenderError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:UnitRenderError';
  override readonly name = 'UnitRenderError';
  declare readonly code: UnitRenderErrorCode;
  constructor(message: string) {
    super('INVALID_UNIT_INPUT', message);
  }
}

export interface BrokerUnitOptions {
  /** The node executable (process.execPath). */
  readonly nodePath: string;
  /** The installed CLI entry, `dist/cli/main.js` (brokerCliEntry()). */
  readonly cliEntry: string;
  /** An absolute literal path; default DEFAULT_UNIT_SOCKET. */
  readonly socketPath?: string | undefined;
  readonly configDir?: string | undefined;
  readonly configFile?: string | undefined;
  /** An absolute literal path the service may write; default DEFAULT_UNIT_STATE_DIR. */
  readonly stateDir?: string | undefined;
  /** `serve --drain`. */
  readonly drainMs: number;
  /** How long past the drain `serve` may take before it exits anyway (serve.ts EXIT_GRACE_MS). */
  readonly exitGraceMs: number;
  readonly watchdogSec?: number | undefined;
}

export interface RenderedUnit {
  readonly name: string;
  readonly text: string;
}

/**
 * `<package>/dist/cli/main.js`: this module sits in `src/systemd/` or
 * `dist/systemd/`, both two levels below the package root (as
 * package-version.ts relies on), so one relative path serves the build and
 * the sources run through tsx — which still need the package built, since a
 * unit cannot run TypeScript.
 */
export function brokerCliEntry(): string {
  return fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
}

/** Doubles `%`, so systemd reads it literally rather than as a specifier. */
export function escapeSpecifiers(value: string): string {
  return value.replaceAll('%', '%%');
}

/**
 * One ExecStart= word for a literal string: bare when it is plain, else in
 * double quotes with C-style escapes; `%` and `$` are doubled either way, so
 * systemd expands neither a specifier nor a variable inside a path.
 */
export function execWord(literal: string): string {
  // A function, not '$$': in a replacement string `$$` means one `$`.
  const escaped = escapeSpecifiers(literal).replaceAll('$', () => '$$');
  if (escaped !== '' && !/[\s"'\\;]/.test(escaped)) return escaped;
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/**
 * The words of an ExecStart= value as execWord() writes them: split at
 * unquoted spaces, double quotes and their backslash escapes undone, `%%`
 * and `$$` halved. A lone specifier (`%t` in the default socket) is left as
 * it is. Null for an unterminated quote, which execWord never writes.
 */
export function execWords(value: string): string[] | null {
  const words: string[] = [];
  let at = 0;
  while (at < value.length) {
    if (value[at] === ' ') {
      at++;
      continue;
    }
    let word = '';
    if (value[at] === '"') {
      at++;
      for (;;) {
        const c = value[at];
        if (c === undefined) return null;
        at++;
        if (c === '"') break;
        if (c === '\\') {
          const next = value[at];
          if (next === undefined) return null;
          word += next;
          at++;
        } else word += c;
      }
      if (at < value.length && value[at] !== ' ') return null;
    } else {
      while (at < value.length && value[at] !== ' ') word += value[at++];
    }
    words.push(word.replaceAll('%%', '%').replaceAll('$$', '$'));
  }
  return words;
}

/** One word of a space-separated path list (ReadWritePaths=), quoted when it must be. */
function listWord(systemdValue: string): string {
  if (!/[\s"'\\]/.test(systemdValue)) return systemdValue;
  return `"${systemdValue.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

function checkPath(what: string, path: string): void {
  if (!isAbsolute(path)) throw new UnitRenderError(`${what} must be an absolute path: ${path}`);
  if (/[\n\r\0]/.test(path))
    throw new UnitRenderError(`${what} contains a newline or NUL: ${JSON.stringify(path)}`);
}

function checkOptions(options: BrokerUnitOptions): void {
  checkPath('the node executable', options.nodePath);
  checkPath('the CLI entry', options.cliEntry);
  if (options.socketPath !== undefined) checkPath('the socket path', options.socketPath);
  if (options.configDir !== undefined) checkPath('the config directory', options.configDir);
  if (options.configFile !== undefined) checkPath('the config file', options.configFile);
  if (options.stateDir !== undefined) checkPath('the state directory', options.stateDir);
  for (const [name, value] of [
    ['drainMs', options.drainMs],
    ['exitGraceMs', options.exitGraceMs],
    ['watchdogSec', options.watchdogSec ?? DEFAULT_WATCHDOG_SEC],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new UnitRenderError(`${name} must be a non-negative integer, not ${value}`);
  }
}

/** The socket path in unit syntax: the specifier default, or a literal with `%` escaped. */
function unitSocket(options: BrokerUnitOptions): string {
  return options.socketPath === undefined
    ? DEFAULT_UNIT_SOCKET
    : escapeSpecifiers(options.socketPath);
}

/** The ExecStart= word for the socket: the default needs its %t expanded, so it is not escaped. */
function socketWord(options: BrokerUnitOptions): string {
  return options.socketPath === undefined ? DEFAULT_UNIT_SOCKET : execWord(options.socketPath);
}

/** Seconds systemd waits for a stop: the broker's drain plus its exit grace, plus a margin. */
export function timeoutStopSec(drainMs: number, exitGraceMs: number): number {
  return Math.ceil((drainMs + exitGraceMs + STOP_MARGIN_MS) / 1000);
}

/** A socket under /tmp would vanish into the service's private /tmp. */
function underTmp(path: string): boolean {
  return /^\/(var\/)?tmp(\/|$)/.test(posix.normalize(path));
}

function lines(parts: readonly (string | false)[]): string {
  return `${parts.filter((p) => p !== false).join('\n')}\n`;
}

export function renderSocketUnit(options: BrokerUnitOptions): RenderedUnit {
  checkOptions(options);
  return {
    name: SOCKET_UNIT,
    text: lines([
      '# handoff-broker: the well-known socket, owned by systemd so that clients',
      '# can connect while the broker starts, restarts or upgrades (written by',
      '# `handoff-broker install --systemd`; rerun it with --force to regenerate).',
      '',
      '[Unit]',
      'Description=handoff broker socket',
      'Documentation=https://github.com/handoff-dev/handoff/tree/main/packages/broker#running-under-systemd',
      '',
      '[Socket]',
      '# The same path `serve --socket` is given in the service, and clients default to.',
      `ListenStream=${unitSocket(options)}`,
      '# Only this user may connect (the broker also checks SO_PEERCRED).',
      'SocketMode=0600',
      '# The socket directory is private: nobody else can replace the socket (DESIGN §5).',
      'DirectoryMode=0700',
      '# The name the broker looks for in LISTEN_FDNAMES to adopt this listener.',
      `FileDescriptorName=${UNIT_FD_NAME}`,
      '# One broker accepts every connection itself.',
      'Accept=no',
      '',
      '[Install]',
      '# Listen from login on; the service starts at the first connection.',
      'WantedBy=sockets.target',
    ]),
  };
}

export function renderServiceUnit(options: BrokerUnitOptions): RenderedUnit {
  checkOptions(options);
  const socketDir = posix.dirname(unitSocket(options));
  // The broker writes control.sock beside its socket, daemons their sockets
  // under %t/handoff/daemons, logs go to the state directory; `-`: a missing
  // one must not stop the start (install creates the state directory).
  const writable = [listWord(socketDir)];
  if (socketDir !== '%t/handoff') writable.push(listWord('-%t/handoff'));
  const stateDir =
    options.stateDir === undefined ? DEFAULT_UNIT_STATE_DIR : escapeSpecifiers(options.stateDir);
  writable.push(listWord(`-${stateDir}`));
  const exec = [
    execWord(options.nodePath),
    ...BROKER_NODE_FLAGS,
    execWord(options.cliEntry),
    'serve',
    '--socket',
    socketWord(options),
    ...(options.configDir === undefined ? [] : ['--config-dir', execWord(options.configDir)]),
    ...(options.configFile === undefined ? [] : ['--config-file', execWord(options.configFile)]),
    '--drain',
    String(options.drainMs),
  ];
  const privateTmp = options.socketPath === undefined || !underTmp(options.socketPath);
  return {
    name: SERVICE_UNIT,
    text: lines([
      '# handoff-broker: the broker, started by handoff-broker.socket at the first',
      '# connection (written by `handoff-broker install --systemd`; rerun it with',
      '# --force to regenerate, or override with `systemctl --user edit handoff-broker`).',
      '',
      '[Unit]',
      'Description=handoff broker',
      'Documentation=https://github.com/handoff-dev/handoff/tree/main/packages/broker#running-under-systemd',
      '# The listener comes from the socket unit; start after it, never without it.',
      `Requires=${SOCKET_UNIT}`,
      `After=${SOCKET_UNIT}`,
      '',
      '[Service]',
      '# The broker says READY=1 once it serves, STOPPING=1 when it drains.',
      'Type=notify',
      '# `handoff-broker upgrade` (or a reload) hands over to a successor broker,',
      '# which tells systemd MAINPID=<its pid> and READY=1: it is not the process',
      '# systemd started, so any process of the unit may notify.',
      'NotifyAccess=all',
      '# A reload is an upgrade in place: a fresh broker (a newer install) takes the',
      '# socket, the daemons and their channels over; no client is refused.',
      'ExecReload=/bin/kill -HUP $MAINPID',
      '# --socket names the path the socket unit listens on, so an adopted and a',
      '# self-bound socket are the same; --drain as given to install. The node flag',
      "# caps V8's young generation: a flat Hello with many services, a smaller RSS.",
      `ExecStart=${exec.join(' ')}`,
      '# A crash restarts it; the socket unit keeps queueing clients meanwhile.',
      'Restart=on-failure',
      '# SIGTERM goes to the broker alone: it drains Hellos, then stops its daemons',
      '# itself; whatever is left at the stop timeout is killed.',
      'KillMode=mixed',
      '# Longer than the drain plus the 10 s serve allows itself after it, so the',
      "# broker's own deadline, not systemd's SIGKILL, ends a slow stop.",
      `TimeoutStopSec=${timeoutStopSec(options.drainMs, options.exitGraceMs)}s`,
      '# The broker sends WATCHDOG=1 at half this; a stuck event loop is restarted.',
      `WatchdogSec=${options.watchdogSec ?? DEFAULT_WATCHDOG_SEC}s`,
      '',
      '# Hardening that a user unit can have (the sandboxing options rely on',
      '# unprivileged user namespaces). Daemons the broker spawns inherit all of it.',
      '# No setuid gains, for the broker or its daemons.',
      'NoNewPrivileges=yes',
      privateTmp && "# A private /tmp: nothing else sees or plants files in the broker's.",
      privateTmp && 'PrivateTmp=yes',
      '# The file system, home included, is read-only but for the socket directory',
      '# and the state directory; daemons that write elsewhere need a drop-in',
      '# ReadWritePaths= (systemctl --user edit handoff-broker.service).',
      'ProtectSystem=strict',
      `ReadWritePaths=${writable.join(' ')}`,
      '# Files and sockets it creates are private to the user.',
      'UMask=0077',
      '# No personality(2) switches, realtime scheduling or setuid/setgid files.',
      'LockPersonality=yes',
      'RestrictRealtime=yes',
      'RestrictSUIDSGID=yes',
      '# Only native system calls (no 32-bit ABI to slip past filters).',
      'SystemCallArchitectures=native',
      '# The broker uses Unix sockets only; daemons that need the network must',
      '# add AF_INET AF_INET6 in a drop-in.',
      'RestrictAddressFamilies=AF_UNIX',
      '',
      '[Install]',
      '# `systemctl --user enable handoff-broker.service` enables the socket too.',
      `Also=${SOCKET_UNIT}`,
    ]),
  };
}

/** Both units, the socket first (it is the one to enable). */
export function renderBrokerUnits(options: BrokerUnitOptions): RenderedUnit[] {
  return [renderSocketUnit(options), renderServiceUnit(options)];
}
