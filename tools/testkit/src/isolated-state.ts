// Vitest global setup: every test run gets its own XDG_STATE_HOME (daemon
// logs, crash reports), so a broker a test starts — in process or as a
// `serve` child — never writes into the developer's (or CI user's) home,
// and the directory goes with the run. A test that sets its own wins.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const previous = process.env.XDG_STATE_HOME;
  const dir = mkdtempSync(join(tmpdir(), 'handoff-test-state-'));
  process.env.XDG_STATE_HOME = dir;
  return () => {
    if (previous === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = previous;
    rmSync(dir, { recursive: true, force: true });
  };
}
