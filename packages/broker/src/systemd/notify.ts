// sd_notify for the broker: READY/STATUS/RELOADING/STOPPING datagrams to
// NOTIFY_SOCKET and the WATCHDOG=1 keep-alive timer. A no-op without
// NOTIFY_SOCKET; never throws into the broker (a failed send is reported once).
import { sendUnixDatagram } from '@handoff/fdpass';

export interface SystemdNotifierOptions {
  /** Called once, for the first send that fails; later failures are silent until one succeeds. */
  onError?: (error: Error) => void;
  /** This process's pid (for WATCHDOG_PID); defaults to process.pid. */
  pid?: number;
}

export class SystemdNotifier {
  private readonly socket: string | null;
  private readonly watchdogUsec: number | null;
  private readonly onError: ((error: Error) => void) | undefined;
  private watchdog: NodeJS.Timeout | null = null;
  private failing = false;

  /**
   * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from `env`, then
   * removes them from it (as sd_notify's unset_environment does) so that
   * nothing spawned later inherits them. The watchdog applies only when
   * WATCHDOG_PID is unset or names this process.
   */
  static fromEnv(env: NodeJS.ProcessEnv, options: SystemdNotifierOptions = {}): SystemdNotifier {
    const socket = env.NOTIFY_SOCKET;
    const usec = env.WATCHDOG_USEC;
    const watchdogPid = env.WATCHDOG_PID;
    delete env.NOTIFY_SOCKET;
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
    const pid = options.pid ?? process.pid;
    const forUs = watchdogPid === undefined || Number(watchdogPid) === pid;
    const interval =
      usec !== undefined && /^[1-9][0-9]*$/.test(usec) && forUs ? Number(usec) : null;
    return new SystemdNotifier(
      socket !== undefined && socket.length > 0 ? socket : null,
      interval,
      options.onError,
    );
  }

  private constructor(
    socket: string | null,
    watchdogUsec: number | null,
    onError: ((error: Error) => void) | undefined,
  ) {
    this.socket = socket;
    this.watchdogUsec = watchdogUsec;
    this.onError = onError;
  }

  /** True when a manager listens (NOTIFY_SOCKET was set). */
  get enabled(): boolean {
    return this.socket !== null;
  }

  /** NOTIFY_SOCKET as it was given, for a successor broker to notify in our place (src/upgrade/). */
  get address(): string | null {
    return this.socket;
  }

  /** The keep-alive period the manager asked for, in µs; null without one. */
  get watchdogIntervalUsec(): number | null {
    return this.socket === null ? null : this.watchdogUsec;
  }

  /** READY=1 (startup finished, or a reload did), with an optional STATUS. */
  ready(status?: string): void {
    this.send(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${oneLine(status)}`);
  }

  /**
   * MAINPID=<pid> and READY=1: a successor broker taking over after an
   * upgrade tells the manager it is the service's main process now (the
   * unit needs NotifyAccess=all: we are not the pid it started).
   */
  readyAsMain(status?: string, pid: number = process.pid): void {
    const statusLine = status === undefined ? '' : `\nSTATUS=${oneLine(status)}`;
    this.send(`MAINPID=${pid}\nREADY=1${statusLine}`);
  }

  status(text: string): void {
    this.send(`STATUS=${oneLine(text)}`);
  }

  /** RELOADING=1 with the CLOCK_MONOTONIC timestamp systemd's Type=notify-reload expects. */
  reloading(status?: string): void {
    const now = process.hrtime.bigint() / 1000n;
    const statusLine = status === undefined ? '' : `\nSTATUS=${oneLine(status)}`;
    this.send(`RELOADING=1\nMONOTONIC_USEC=${now}${statusLine}`);
  }

  stopping(status?: string): void {
    this.send(status === undefined ? 'STOPPING=1' : `STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  /**
   * Sends WATCHDOG=1 now and every half WATCHDOG_USEC (systemd's advice)
   * until close(). The timer is unref'd: it never keeps the process alive.
   */
  startWatchdog(): void {
    const usec = this.watchdogIntervalUsec;
    if (usec === null || this.watchdog !== null) return;
    const ms = Math.max(1, Math.floor(usec / 2000));
    this.send('WATCHDOG=1');
    this.watchdog = setInterval(() => this.send('WATCHDOG=1'), ms);
    this.watchdog.unref();
  }

  /** Stops the watchdog timer. Later calls still send (STOPPING=1 after close is fine). */
  close(): void {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private send(message: string): void {
    if (this.socket === null) return;
    try {
      sendUnixDatagram(this.socket, new TextEncoder().encode(message));
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.onError?.(error as Error);
      this.failing = true;
    }
  }
}

/** A STATUS value is one line: a newline would start another assignment. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
