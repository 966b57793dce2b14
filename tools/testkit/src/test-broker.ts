// A real broker in this process, bound in a fresh temp dir and gone with it:
// what a test starts when it needs a broker to route through. Broker
// behaviour is @handoff/broker's; this owns only where it lives and cleanup.
import type { Broker, BrokerOptions } from '@handoff/broker';
import { type TempDir, tempDir } from './temp-dir.js';

export interface TestBrokerOptions extends BrokerOptions {
  /** Names the temp dir (`handoff-<prefix>-…`). */
  prefix?: string;
}

export class TestBroker {
  private constructor(
    readonly broker: Broker,
    readonly tmp: TempDir,
  ) {}

  /**
   * Starts a broker on `<tmp>/run/broker.sock` with config watching off
   * (options override both). The broker is imported on first use, so tests
   * of the lower packages can use the rest of the kit without loading it.
   */
  static async start(options: TestBrokerOptions = {}): Promise<TestBroker> {
    const { prefix = 'broker', ...brokerOptions } = options;
    const tmp = tempDir(prefix);
    try {
      const { startBroker } = await import('@handoff/broker');
      const broker = await startBroker({
        socketPath: tmp.path('run', 'broker.sock'),
        watchConfig: false,
        ...brokerOptions,
      });
      return new TestBroker(broker, tmp);
    } catch (err) {
      tmp.remove();
      throw err;
    }
  }

  get socketPath(): string {
    return this.broker.socketPath;
  }

  /** Closes the broker (giving connections `deadlineMs` to finish), then removes its dir. */
  async close(deadlineMs = 1000): Promise<void> {
    try {
      await this.broker.close({ deadlineMs });
    } finally {
      this.tmp.remove();
    }
  }
}
