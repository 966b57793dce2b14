// The soak harness itself, end to end: a short real run (broker, daemon,
// kills, every traffic kind) must end with an ok summary and leave no
// process, socket file or temp directory behind; --help and a bad flag
// answer as documented.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const MAIN = join(ROOT, 'tools/soak/src/main.ts');

async function soak(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@handoff/source', '--import', 'tsx', MAIN, ...args],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Running, and not a zombie: /proc/<pid>/stat's state field. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

interface Summary {
  type: string;
  ok: boolean;
  reasons: string[];
  requests: Record<string, number>;
  failures: { count: number };
  daemon_kills: number;
  fds: Record<string, { baseline: number; final: number }>;
  children: Record<string, { baseline: number; final: number }>;
  rss: Record<string, { growth_pct: number } | null>;
  pids: { runner: number; broker: number };
  dir: string;
  left_behind: string[];
}

describe('npm run soak', () => {
  it('runs every traffic kind for 8 s with a daemon kill, reports ok, and leaves nothing behind', async () => {
    // 8 s is too short for RSS to reach a steady state (the warm-up is the
    // first 2 s), so the growth limit is loosened here; the 60 s CI run
    // holds the real 10 %. Everything else is judged as in CI.
    const { code, stdout, stderr } = await soak([
      '--duration',
      '8',
      '--kill-every',
      '3',
      '--max-rss-growth',
      '200',
    ]);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    const summary = lines.at(-1) as Summary;
    expect(summary.type, stderr).toBe('summary');
    expect(summary.reasons, stderr).toEqual([]);
    expect(summary.ok).toBe(true);
    expect(code).toBe(0);
    expect(lines.filter((l) => l.type === 'sample').length).toBeGreaterThanOrEqual(5);
    for (const kind of [
      'handoff',
      'handoff_first_request',
      'line',
      'probe',
      'admin',
      'slow_reader',
      'abrupt',
    ]) {
      expect(summary.requests[kind], kind).toBeGreaterThan(0);
    }
    expect(summary.failures.count).toBe(0);
    expect(summary.daemon_kills).toBeGreaterThanOrEqual(1);
    expect(summary.fds.broker!.final).toBeLessThanOrEqual(summary.fds.broker!.baseline);
    expect(summary.children.daemons).toEqual({ baseline: 1, final: 1 });
    expect(summary.rss.broker).not.toBeNull();
    expect(summary.left_behind).toEqual([]);
    expect(running(summary.pids.broker)).toBe(false);
    expect(existsSync(summary.dir)).toBe(false);
  }, 90_000);

  it('prints its usage for --help and refuses a bad duration with exit 2', async () => {
    const help = await soak(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run -s soak -- \[--duration 60s\]/);
    const bad = await soak(['--duration', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('not a duration: "soon"');
    expect(bad.stdout).toBe('');
  }, 60_000);
});
