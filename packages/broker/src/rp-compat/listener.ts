// `serve --rp-compat`'s second client listener, at the address running-process
// clients look for (address.ts), feeding the same router as the main one.
// It owns its socket file by identity, and across an upgrade the successor
// binds a fresh listener and renames it into place (upgrade notes below).
import { randomBytes } from 'node:crypto';
import { renameSync, watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { preparePrivateSocketPath } from '@handoff/backend-sdk';
import { FdServer, type FdSocket } from '@handoff/fdpass';
import { closeClientListener } from '../client-listener-close.js';
import { CLIENT_SOCKET_OPTIONS, type ClientMode } from '../hello-router.js';
import { listenKeepingFile, type SocketFile, socketFileAt } from '../upgrade/listeners.js';
import { ensureRpBrokerDir } from './address.js';

/** After an upgrade's commit, how long the old broker waits for the successor's listener to replace its file. */
export const RP_HANDOVER_WAIT_MS = 5000;

export interface RpListenerParts {
  /** The broker's own accept path (peer check, client tracking, the router). */
  serve(socket: FdSocket, mode: ClientMode): void;
  log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void;
}

/**
 * Upgrades: the upgrade protocol hands over the main client listener and the
 * control socket only. The successor (started with the same command line,
 * so with --rp-compat too) binds its own listener under a temporary name
 * once the old broker committed, and rename(2)s it over the RP path: a
 * client connects to one or the other, never to nothing. The old broker
 * keeps accepting there until its file is replaced (or RP_HANDOVER_WAIT_MS),
 * then drains its backlog like the main listener's and closes.
 */
export class RpCompatListener {
  readonly path: string;
  private readonly parts: RpListenerParts;
  private server: FdServer | null = null;
  private file: SocketFile | null = null;
  private accepted = 0;
  private closing: Promise<void> | null = null;

  constructor(path: string, parts: RpListenerParts) {
    this.path = path;
    this.parts = parts;
  }

  /**
   * Before anything else is bound: the directory made private, and a stale
   * file removed — or ADDRESS_IN_USE when something (a running-process
   * broker) serves there. A successor skips the check: the live file is its
   * predecessor's, replaced at the commit.
   */
  async prepare(successor: boolean): Promise<void> {
    await ensureRpBrokerDir(this.path);
    if (!successor) await preparePrivateSocketPath(this.path);
  }

  /** Binds and starts accepting (a successor: replacing its predecessor's file). */
  async listen(successor: boolean): Promise<void> {
    const options = {
      kind: 'stream',
      mode: 0o600,
      reserveFd: true,
      ...CLIENT_SOCKET_OPTIONS,
    } as const;
    if (successor) {
      // After the commit: failing here must not fail the successor, which
      // already serves the main socket. RP clients go unserved, and say so.
      try {
        this.server = await this.replaceFile(options);
      } catch (error) {
        this.parts.log(
          'warn',
          { err: error, socket: this.path },
          'cannot take over the running-process socket; running-process clients are not served',
        );
        return;
      }
      this.file = socketFileAt(this.path);
    } else {
      const bound = await listenKeepingFile(this.path, options);
      this.server = bound.server;
      this.file = bound.file;
    }
    const server = this.server;
    server.on('connection', (socket: FdSocket) => {
      this.accepted++;
      this.parts.serve(socket, 'normal');
    });
    server.on('pressure', (socket: FdSocket) => {
      this.accepted++;
      this.parts.serve(socket, 'fd-pressure');
    });
    server.on('error', (error: Error) =>
      this.parts.log('warn', { err: error, socket: this.path }, 'running-process socket error'),
    );
    this.parts.log('info', { socket: this.path }, 'serving running-process clients');
  }

  /** Binds a temporary name in the same directory and renames it over the path (atomic for connecting clients). */
  private async replaceFile(options: Parameters<typeof FdServer.listen>[1]): Promise<FdServer> {
    const temporary = join(dirname(this.path), `.h${randomBytes(4).toString('hex')}`);
    const server = await FdServer.listen(temporary, options);
    try {
      renameSync(temporary, this.path);
    } catch (error) {
      server.close();
      throw error;
    }
    return server;
  }

  /** Stops accepting: the file goes first (only while it is ours), then the backlog is served. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    const server = this.server;
    if (server === null || server.closed) return;
    await closeClientListener(server, {
      shared: false,
      socketPath: this.path,
      socketFile: this.file,
      accepted: () => this.accepted,
    });
  }

  /** After an upgrade's commit: serve until the successor's file replaces ours, then close. */
  async handedOver(): Promise<void> {
    if (this.server !== null && !this.server.closed) await this.replaced(RP_HANDOVER_WAIT_MS);
    await this.close();
  }

  private stillOurs(): boolean {
    const now = socketFileAt(this.path);
    return (
      now !== null && this.file !== null && now.dev === this.file.dev && now.ino === this.file.ino
    );
  }

  /** Resolves once the file at our path is not ours any more (a rename in the directory), or at the deadline. */
  private replaced(deadlineMs: number): Promise<void> {
    if (!this.stillOurs()) return Promise.resolve();
    return new Promise((resolve) => {
      const watcher = watch(dirname(this.path), () => {
        if (!this.stillOurs()) done();
      });
      const timer = setTimeout(() => done(), deadlineMs);
      const done = () => {
        clearTimeout(timer);
        watcher.close();
        resolve();
      };
      watcher.on('error', () => done());
      // A rename between the first look and the watch starting.
      if (!this.stillOurs()) done();
    });
  }
}
