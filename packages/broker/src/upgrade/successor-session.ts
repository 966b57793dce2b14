// One successor process as the old broker sees it during an upgrade: our
// end of its upgrade channel, its messages in order, and the first failure
// — its exit, EOF, garbage, its own 'failed', the deadline, or an abort —
// as an UpgradeError. Killing it (its whole process group) on failure and
// letting it go after a commit are here too; what is sent is handover.ts's.
import type { FdSocket, SpawnedProcess } from '@handoff/fdpass';
import { closeQuietly } from '../close-quietly.js';
import { UpgradeError, UpgradeStateError } from './errors.js';
import { launchSuccessor, type SuccessorCommand } from './successor.js';
import { encodeUpgradeMessage, parseUpgradeMessage, type UpgradeMessage } from './wire.js';

type MessageOf<T extends UpgradeMessage['type']> = Extract<UpgradeMessage, { type: T }>;

/**
 * One successor process and our end of its upgrade channel: its messages
 * in order, and the first failure (exit, EOF, garbage, its own 'failed',
 * the deadline) as an UpgradeError.
 */
export class SuccessorSession {
  private readonly child: SpawnedProcess;
  private readonly channel: FdSocket;
  private readonly queue: UpgradeMessage[] = [];
  private failure: UpgradeError | null = null;
  private wake: (() => void) | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly exited: Promise<void>;

  constructor(command: SuccessorCommand, deadlineMs: number) {
    let launched: ReturnType<typeof launchSuccessor>;
    try {
      launched = launchSuccessor(command);
    } catch (error) {
      throw new UpgradeError(
        'SUCCESSOR_SPAWN_FAILED',
        `cannot start the successor ${command.command}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.child = launched.child;
    this.channel = launched.channel;
    this.exited = new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
    this.timer = setTimeout(
      () =>
        this.fail(
          new UpgradeError(
            'SUCCESSOR_TIMEOUT',
            `the successor was not ready within ${deadlineMs} ms`,
          ),
        ),
      deadlineMs,
    );
    this.child.once('exit', (code, signal) =>
      this.fail(
        new UpgradeError(
          'SUCCESSOR_EXITED',
          `the successor exited before it was ready (${signal ? `signal ${signal}` : `status ${code}`})`,
        ),
      ),
    );
    this.channel.on('message', ({ data, fds }: { data: Buffer; fds: number[] }) => {
      let message: UpgradeMessage;
      try {
        message = parseUpgradeMessage(data, fds.length);
      } catch (error) {
        closeQuietly(fds);
        const reason = error instanceof UpgradeStateError ? error.message : String(error);
        this.fail(new UpgradeError('SUCCESSOR_PROTOCOL', `the successor sent garbage: ${reason}`));
        return;
      }
      if (message.type === 'failed') {
        this.fail(
          new UpgradeError('SUCCESSOR_FAILED', `the successor cannot take over: ${message.reason}`),
        );
        return;
      }
      this.queue.push(message);
      this.wake?.();
    });
    // EOF usually comes with an exit: give the exit a moment to be the reason.
    const closed = () => {
      const later = setTimeout(
        () =>
          this.fail(
            new UpgradeError('SUCCESSOR_EXITED', 'the successor closed the upgrade channel'),
          ),
        500,
      );
      later.unref();
      void this.exited.then(() => clearTimeout(later));
    };
    this.channel.once('end', closed);
    this.channel.once('close', closed);
    this.channel.on('error', () => undefined);
  }

  /** Throws the failure, if one came. */
  check(): void {
    if (this.failure !== null) throw this.failure;
  }

  async expect<T extends 'hello' | 'ready'>(type: T): Promise<MessageOf<T>> {
    for (;;) {
      this.check();
      const message = this.queue.shift();
      if (message !== undefined) {
        if (message.type !== type)
          throw new UpgradeError(
            'SUCCESSOR_PROTOCOL',
            `the successor sent ${message.type}, not ${type}`,
          );
        return message as MessageOf<T>;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = null;
    }
  }

  send(message: UpgradeMessage, fds: number[] = []): void {
    this.check();
    try {
      this.channel.write(encodeUpgradeMessage(message), fds);
    } catch (error) {
      throw new UpgradeError(
        'HANDOVER_FAILED',
        `cannot send the state: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  abort(error: UpgradeError): void {
    this.fail(error);
  }

  private fail(error: UpgradeError): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.wake?.();
  }

  /** After a commit: the successor lives on by itself. */
  release(): void {
    clearTimeout(this.timer);
    this.failure ??= new UpgradeError('NOT_SERVING', 'committed');
    this.child.removeAllListeners('exit');
    this.child.unref();
    this.channel.removeAllListeners('end');
    this.channel.removeAllListeners('close');
    // Flushed before the close: the commit is queued at most behind the state.
    this.channel.end();
    this.channel.unref();
  }

  /** The upgrade failed: the successor goes (its whole process group), and we wait for it. */
  async kill(): Promise<void> {
    clearTimeout(this.timer);
    this.failure ??= new UpgradeError('NOT_SERVING', 'abandoned');
    this.channel.close();
    const pid = this.child.pid;
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        this.child.kill('SIGKILL');
      }
      await this.exited;
    }
  }
}
