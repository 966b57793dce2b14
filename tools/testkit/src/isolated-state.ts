// Vitest global setup: every test run gets its own XDG_STATE_HOME (daemon
// logs, crash reports), so a broker a test starts — in process or as a
// `serve` child — never writes into the developer's (or CI user's) home,
// and the directory goes with the run. A test that sets its own wins.
// It also sets HANDOFF_ALLOW_ROOT=1: CI and the test machine run as root,
// and the brokers tests start are throwaway ones in temp dirs (a test of
// the root refusal itself passes allowRoot: false or clears the variable).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const previous = process.env.XDG_STATE_HOME;
  const previousAllowRoot = process.env.HANDOFF_ALLOW_ROOT;
  const dir = mkdtempSync(join(tmpdir(), 'handoff-test-state-'));
  process.env.XDG_STATE_HOME = dir;
  process.env.HANDOFF_ALLOW_ROOT = '1';
  return () => {
    if (previousAllowRoot === undefined) delete process.env.HANDOFF_ALLOW_ROOT;
    else process.env.HANDOFF_ALLOW_ROOT = previousAllowRoot;
    if (previous === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = previous;
    rmSync(dir, { recursive: true, force: true });
  };
}
