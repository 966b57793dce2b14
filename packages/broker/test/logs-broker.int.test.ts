// Daemon logs through a real broker (startBroker with a stateDir): a spawn
// failure's output tail in the client's Refused text and in `status`, and a
// full log disk (/dev/full) that neither the daemon nor the broker notices
// beyond dropped lines — both keep serving — until the disk recovers.
import { mkdirSync, readFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { AdminVerb, ErrorCode } from '@handoff/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { adminRequest } from '../src/client/admin-client.js';
import { ConnectServiceError, connectService } from '../src/client/connect-service.js';
import { readLastRecords } from '../src/logs/reader.js';
import { decodeRecord, logFilePath, logsDir } from '../src/logs/record.js';
import { liveBrokers, P } from './broker-session.js';
import { echoService, fixtures, openFds, str, tempDir, text, tsxArgs } from './harness.js';

const { broker } = liveBrokers();
const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => {
  for (const d of dirs) d.remove();
});

function stateDir(): string {
  const d = tempDir('logs-broker');
  dirs.push(d);
  return d.dir;
}

async function status(socketPath: string): Promise<Record<string, unknown>> {
  const reply = await adminRequest(socketPath, { verb: AdminVerb.STATUS, json: true });
  return JSON.parse(reply.body) as Record<string, unknown>;
}

/** Polls `check` (an admin query or a file read) until it holds, for up to 20 s. */
async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a spawn failure', () => {
  it("carries the daemon's last output in the Refused text, in status, and in its log file", async () => {
    const dir = stateDir();
    const b = await broker([echoService('broken', {}, ['--fail-start'])], { stateDir: dir });
    const failure = await connectService('broken', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    }).catch((e: ConnectServiceError) => e);
    expect(failure).toBeInstanceOf(ConnectServiceError);
    const error = failure as ConnectServiceError;
    expect(error.refusal?.code).toBe(ErrorCode.BACKEND_SPAWN_FAILED);
    // The Refused reason, as the client shows it.
    expect(error.message).toMatch(
      /exited before it was ready \(status 3\); its last output:\n {2}echo-daemon: refusing to start \(as asked\)$/,
    );
    const s = await status(b.socketPath);
    expect(s.state_dir).toBe(dir);
    expect(s.spawn_failures).toEqual([
      {
        service: 'broken',
        version: '1.0.0',
        at_unix_ms: expect.any(Number),
        message: expect.stringContaining('exited before it was ready'),
        tail: ['echo-daemon: refusing to start (as asked)'],
      },
    ]);
    const textStatus = await adminRequest(b.socketPath, { verb: AdminVerb.STATUS });
    expect(textStatus.body).toMatch(
      /spawn failure: +broken@1\.0\.0 at .*exited before it was ready/,
    );
    expect(textStatus.body).toContain('echo-daemon: refusing to start (as asked)');
    const { records } = await readLastRecords(dir, 'broken', 10);
    expect(records).toEqual([
      expect.objectContaining({
        stream: 'stderr',
        line: 'echo-daemon: refusing to start (as asked)',
      }),
    ]);
  });
});

describe('a full log disk', () => {
  it('drops lines while daemon and broker keep serving, shows the count, and recovers', async () => {
    const dir = stateDir();
    const fdsBefore = openFds();
    const chatty = {
      ...echoService('chatty'),
      args: [...tsxArgs, join(fixtures, 'log-chatty-daemon.ts')],
    };
    const b = await broker([chatty], { stateDir: dir });
    const path = logFilePath(dir, 'chatty', '1.0.0');
    mkdirSync(logsDir(dir), { recursive: true, mode: 0o700 });
    symlinkSync('/dev/full', path);
    const request = async (payload: string) => {
      const { socket } = await connectService('chatty', {
        version: '1.0.0',
        brokerPath: b.socketPath,
        timeoutMs: 30_000,
      });
      const client = new FrameClient(socket);
      try {
        return str((await client.request(P, text(payload))).payload);
      } finally {
        client.close();
      }
    };
    expect(await request('first')).toBe('first');
    type LogEntry = { path: string; dropped_lines: number; failing: string | null };
    const failing = await until('dropped lines in status', async () => {
      const logs = (await status(b.socketPath)).logs as LogEntry[];
      return logs[0] && logs[0].dropped_lines > 1000 ? logs[0] : undefined;
    });
    expect(failing).toMatchObject({ path, failing: 'ENOSPC' });
    // The daemon writes on (it is not blocked on its pipe) and serves; so does the broker.
    expect(await request('while full')).toBe('while full');
    const more = await until('more dropped lines', async () => {
      const logs = (await status(b.socketPath)).logs as LogEntry[];
      return logs[0]!.dropped_lines > failing.dropped_lines ? logs[0] : undefined;
    });
    expect(more.failing).toBe('ENOSPC');
    const textStatus = await adminRequest(b.socketPath, { verb: AdminVerb.STATUS });
    expect(textStatus.body).toMatch(
      /logs: +1 file\(s\), \d+ line\(s\) dropped; failing: .*\(ENOSPC\)/,
    );
    // Room again: the file is a file.
    unlinkSync(path);
    const recovered = await until('a written file', () => {
      try {
        const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
        return lines.length > 10 ? lines.map((l) => decodeRecord(l)!) : undefined;
      } catch {
        return undefined;
      }
    });
    expect(recovered[0]).toMatchObject({ stream: 'broker', dropped: expect.any(Number) });
    expect(recovered[0]!.dropped).toBeGreaterThanOrEqual(more.dropped_lines);
    expect(recovered.slice(1).every((r) => r.line.startsWith('chatty'))).toBe(true);
    const after = ((await status(b.socketPath)).logs as LogEntry[])[0]!;
    expect(after.failing).toBeNull();
    expect(await request('after')).toBe('after');
    await b.close({ deadlineMs: 500 });
    expect(openFds()).toBe(fdsBefore);
  });
});
