// A spawn failure's report: the daemon's last output lines appended to the
// Refused text a client sees, and the record `status` keeps of the last
// failure per service (see broker-admin.ts).

/** How many of the daemon's last lines a refusal carries. */
export const REFUSAL_TAIL_LINES = 5;
/** How long a failed spawn waits for the daemon's pipes to end, so its last words are read. */
export const OUTPUT_SETTLE_MS = 250;
/** How many lines of it `status` keeps per service. */
export const STATUS_TAIL_LINES = 10;
/** The longest a single tail line may be in a refusal. */
const LINE_CHARS = 300;

/** The last `count` non-empty lines of `tail`, each cut to a readable length. */
export function lastLines(tail: string, count = REFUSAL_TAIL_LINES): string[] {
  return tail
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(-count)
    .map((line) => (line.length > LINE_CHARS ? `${line.slice(0, LINE_CHARS)}…` : line));
}

/** `message`, then the daemon's last output lines (if any) indented below it. */
export function withOutputTail(message: string, tail: string): string {
  const lines = lastLines(tail);
  if (lines.length === 0) return message;
  return `${message}; its last output:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

/** The last spawn failure of one `service@version`, as `status` shows it. */
export interface SpawnFailure {
  service: string;
  version: string;
  atUnixMs: number;
  message: string;
  /** Its last output lines (at most STATUS_TAIL_LINES). */
  tail: string[];
}

/**
 * Keeps the last spawn failure per service@version from a registry's
 * 'spawn-failed' events (definition, message, tail); returns the reader.
 */
export function trackSpawnFailures(registry: {
  on(
    event: 'spawn-failed',
    listener: (
      definition: { name: string; version: string },
      message: string,
      tail: string,
    ) => void,
  ): unknown;
}): () => SpawnFailure[] {
  const last = new Map<string, SpawnFailure>();
  registry.on('spawn-failed', (definition, message, tail) => {
    const key = `${definition.name}@${definition.version}`;
    // Re-inserted, so the map's order is oldest failure first.
    last.delete(key);
    last.set(key, {
      service: definition.name,
      version: definition.version,
      atUnixMs: Date.now(),
      message,
      tail: lastLines(tail, STATUS_TAIL_LINES),
    });
  });
  return () => [...last.values()];
}
