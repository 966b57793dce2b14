// The identity a daemon proves to probes (DESIGN §2.4): who it is (pid,
// executable and its hashes, entry script), where it listens, and when it
// started on which boot — enough for a prober to tell it from an impostor
// or from a later process that reused its pid.
import { realpath } from 'node:fs/promises';
import { DaemonProcess, type Endpoint } from '@handoff/protocol';
import { createHashCache, type HashCache } from './file-hashes.js';
import { defaultHashStoreDir } from './hash-store.js';
import type { DaemonIdentity } from './probe-answer.js';
import { bootId, processStartTimeMs } from './proc-info.js';

export interface CurrentDaemonOptions {
  /** Reported to brokers; undefined when the daemon never idles out. */
  idleTimeoutSecs?: number;
  /** Where hashes are cached; defaults to one cache per process, persisted in `defaultHashStoreDir()`. */
  hashCache?: HashCache;
  /** The entry script to hash; defaults to process.argv[1]; null for none. */
  entryScript?: string | null;
}

// Persisted: the executable is the same node binary start after start.
const defaultCache = createHashCache({ storeDir: defaultHashStoreDir() });

/** Builds this process's identity for `endpoint` (a socket path or Endpoint). */
export async function currentDaemonProcess(
  endpoint: string | Endpoint,
  options: CurrentDaemonOptions = {},
): Promise<DaemonIdentity> {
  const cache = options.hashCache ?? defaultCache;
  const exePath = await realpath(process.execPath);
  const entry = options.entryScript === undefined ? process.argv[1] : options.entryScript;
  const entryPath = entry ? await realpath(entry).catch(() => null) : null;
  const [exe, entryHashes, boot, started] = await Promise.all([
    cache.get(exePath),
    entryPath ? cache.get(entryPath) : null,
    bootId(),
    processStartTimeMs(process.pid),
  ]);
  const ipcEndpoint = typeof endpoint === 'string' ? { namespaceId: '', path: endpoint } : endpoint;
  return {
    process: DaemonProcess.create({
      pid: process.pid,
      exePath,
      ipcEndpoint,
      startedAtUnixMs: BigInt(Math.round(started)),
      bootId: boot,
      idleTimeoutSecs: options.idleTimeoutSecs,
      exeHashAlgorithm: 'blake3',
      exeHash: exe.blake3,
      entryScriptPath: entryPath ?? '',
      ...(entryHashes ? { entryScriptHash: entryHashes.blake3 } : {}),
    }),
    legacyExeSha256: exe.sha256,
  };
}
