// The main job end to end: `npm run demo`'s steps run programmatically, and
// `npm start`'s broker started, used and stopped with Ctrl-C (SIGINT).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DemoKvClient } from '@handoff/demo-daemon';
import { openFds } from '@handoff/testkit';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../src/demo.ts';
import type { Narrator } from '../src/narrate.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm run demo', () => {
  it('runs every step, each checked, and leaves no process, socket or fd behind', async () => {
    const before = openFds();
    const printed: string[] = [];
    const say: Narrator = {
      section: (t) => printed.push(`# ${t}`),
      step: (t) => printed.push(t),
      detail: (t) => printed.push(t),
    };
    const result = await runDemo(say);
    expect(result.routes).toEqual(['handoff', 'handoff']);
    expect(result.legacyReplies[0]).toBe('VALUE hello%20from%20a%20handed-off%20connection');
    expect(result.legacyReplies[1]).toBe('STORED');
    expect(result.legacyReplies[2]).toMatch(/^STATS entries=2 /);
    expect(result.probe.exitCode).toBe(0);
    const probes = result.probe.json.probes as { checks: { name: string; verdict: string }[] }[];
    expect(result.probe.json.ok).toBe(true);
    expect(probes[0]!.checks.map((c) => c.verdict)).toEqual(Array(8).fill('PASS'));
    expect(probes[0]!.checks.map((c) => c.name)).toContain('start time');
    expect(result.metrics).toMatch(/spawn_attempts_total\{service="[^"]+",outcome="ok"\} 1/);
    expect(result.brokerExitCode).toBe(0);
    expect(alive(result.daemonPid)).toBe(false);
    expect(existsSync(result.socketPath)).toBe(false);
    expect(printed.filter((l) => l.startsWith('# '))).toHaveLength(6);
    await expect.poll(openFds).toBe(before);
  });
});

describe('npm start', () => {
  it('serves demo-kv on the socket it prints, and Ctrl-C stops broker and daemon', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'handoff-start-'));
    const socketPath = join(dir, 'run', 'broker.sock');
    try {
      const child = spawn(
        process.execPath,
        [
          '--conditions=@handoff/source',
          '--import',
          'tsx',
          join(import.meta.dirname, '..', 'src', 'serve.ts'),
        ],
        {
          // Info level: the broker logs as it works, and none of it may reach the banner (issue 16).
          env: { ...process.env, HANDOFF_BROKER_SOCKET: socketPath, HANDOFF_LOG_LEVEL: 'info' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
      });
      await expect.poll(() => out, { timeout: 30_000 }).toContain(`listening on ${socketPath}`);
      expect(out).toContain('npm run -s demo-kv -- get greeting');
      const client = await DemoKvClient.connect({ brokerPath: socketPath, timeoutMs: 60_000 });
      expect(client.route).toBe('handoff');
      await client.set('k', 'v');
      const stats = await client.stats();
      client.close();
      expect(stats.sets).toBe(1n);
      const daemonPid = Number(
        readFileSync(
          join(dir, 'run', 'services', 'demo-kv-1.0.0.sock.identity.json'),
          'utf8',
        ).match(/"pid": (\d+)/)![1],
      );
      expect(alive(daemonPid)).toBe(true);
      child.kill('SIGINT');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
      expect(out).toContain('broker stopped.');
      // The broker's log went to stderr (JSON: not a terminal), never into the banner.
      expect(err).toContain('"msg":"backend ready"');
      expect(out).not.toMatch(/^\{/m);
      expect(alive(daemonPid)).toBe(false);
      expect(existsSync(socketPath)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
