// A real daemon server (serveDaemon) in this process, bound in a fresh temp
// dir with an identity computed for it, and gone with the dir. What the
// daemon answers is the test's onRequest; serving is @handoff/backend-sdk's.
import type { DaemonServer, HashCache, ServeDaemonOptions } from '@handoff/backend-sdk';
import { type TempDir, tempDir } from './temp-dir.js';

export interface TestDaemonOptions extends Omit<ServeDaemonOptions, 'endpoint' | 'identity'> {
  /** Names the temp dir (`handoff-<prefix>-…`). */
  prefix?: string;
  /** Hashing the node binary takes about half a second: share one cache per test file. */
  hashCache?: HashCache;
}

export class TestDaemon {
  private constructor(
    readonly server: DaemonServer,
    readonly endpoint: string,
    readonly tmp: TempDir,
  ) {}

  /**
   * Serves on `<tmp>/daemon.sock`. backend-sdk is imported on first use, so
   * tests of the lower packages can use the rest of the kit without loading it.
   */
  static async start(options: TestDaemonOptions): Promise<TestDaemon> {
    const { prefix = 'daemon', hashCache, ...serveOptions } = options;
    const tmp = tempDir(prefix);
    try {
      const { createHashCache, currentDaemonProcess, serveDaemon } = await import(
        '@handoff/backend-sdk'
      );
      const endpoint = tmp.path('daemon.sock');
      const identity = await currentDaemonProcess(endpoint, {
        hashCache: hashCache ?? createHashCache(),
        entryScript: null,
      });
      const server = await serveDaemon({ ...serveOptions, endpoint, identity });
      return new TestDaemon(server, endpoint, tmp);
    } catch (err) {
      tmp.remove();
      throw err;
    }
  }

  /** Closes the server (giving requests `deadlineMs` to finish), then removes its dir. */
  async close(deadlineMs = 100): Promise<void> {
    try {
      await this.server.close({ deadlineMs });
    } finally {
      this.tmp.remove();
    }
  }
}
