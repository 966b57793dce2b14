// Issue 16, "A daemon that never attaches": the client used to get
// `TIMEOUT no connection to X within 10000 ms` and the broker logged it at
// info. Now the broker's ready deadline (8 s by default) falls inside the
// client's (10 s), and the Refused text says how far the daemon got — never
// connected to the control channel, connected but failed its probe, exited —
// with its last output; the broker logs it at warn.
import { writeFileSync } from 'node:fs';
import { ErrorCode } from '@handoff/protocol';
import { describe, expect, it, vi } from 'vitest';
import { ConnectServiceError, connectService } from '../src/client/connect-service.js';
import { liveBrokers } from './broker-session.js';
import { capturedLog, echoService, openFds, tempDir } from './harness.js';

const { broker, dirs } = liveBrokers();

/** Plain node (no tsx), so it starts at once: it talks, then waits, never attaching. */
const silent = {
  name: 'silent',
  version: '1.0.0',
  command: process.execPath,
  args: [
    '-e',
    "console.error('silent: loading plugins'); console.log('silent: up, but not attaching'); setInterval(() => {}, 1000);",
  ],
  stopGraceMs: 1000,
};

async function refusal(service: string, brokerPath: string, timeoutMs?: number) {
  const error = await connectService(service, {
    version: '1.0.0',
    brokerPath,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  }).then(
    () => {
      throw new Error('connected');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectServiceError);
  return error as ConnectServiceError;
}

describe('a daemon that never becomes ready (issue 16)', () => {
  it('never connects to the control channel: with default deadlines the client gets a Refused saying so, with its output, and the broker warns', async () => {
    const log = capturedLog();
    const b = await broker([silent], { logger: log.logger });
    const fdsBefore = openFds();
    // Both deadlines left at their defaults: the broker's 8 s, the client's 10 s.
    const e = await refusal('silent', b.socketPath);
    expect(e.code).toBe('REFUSED');
    expect(e.refusal?.code).toBe(ErrorCode.BACKEND_SPAWN_FAILED);
    expect(e.message).toContain(
      "silent@1.0.0 was not ready within 8000 ms: it never connected to the broker's control channel (HANDOFF_BROKER_CONTROL)",
    );
    expect(e.message).toContain('silent: loading plugins');
    expect(e.message).toContain('silent: up, but not attaching');
    expect(e.refusal?.details).toMatchObject({ reason: 'ready timeout', control_channel: 'never' });
    const warned = log.lines.filter((l) => l.level === 40 && l.service === 'silent@1.0.0');
    expect(warned.map((l) => l.msg)).toEqual([
      expect.stringContaining('it never connected to the broker'),
    ]);
    // The Refused goes out before the broker has stopped the daemon it
    // gave up on: that daemon's pipes and exit watch close a moment later.
    await vi.waitFor(() => expect(openFds()).toEqual(fdsBefore), { timeout: 3000 });
  });

  it('connects but fails its probe: the Refused names the probe failure', async () => {
    const marker = tempDir('never-attach');
    dirs.push(marker);
    writeFileSync(marker.path('lie'), '');
    const b = await broker(
      [echoService('liar', { readyTimeoutMs: 6000 }, ['--bad-identity-if', marker.path('lie')])],
      { logger: capturedLog().logger },
    );
    const e = await refusal('liar', b.socketPath, 30_000);
    expect(e.refusal?.code).toBe(ErrorCode.BACKEND_SPAWN_FAILED);
    expect(e.message).toMatch(
      /liar@1\.0\.0 was not ready within 6000 ms: it connected to the control channel (once|\d+ times) \(first after \d+ ms\) but its probe failed: probe of .*liar-1\.0\.0\.sock failed: /,
    );
    expect(e.refusal?.details).toMatchObject({ control_channel: 'connected' });
    expect(e.refusal?.details.probe_error).toMatch(/^probe of /);
  });

  it('exits before attaching: the exit status and its last words (details: never connected)', async () => {
    const b = await broker(
      [
        {
          ...silent,
          name: 'quitter',
          args: ['-e', "console.error('quitter: no config, giving up'); process.exit(4);"],
        },
      ],
      { logger: capturedLog().logger },
    );
    const e = await refusal('quitter', b.socketPath, 30_000);
    expect(e.refusal?.code).toBe(ErrorCode.BACKEND_SPAWN_FAILED);
    expect(e.message).toMatch(
      /quitter@1\.0\.0 exited before it was ready \(status 4\); its last output:\n {2}quitter: no config, giving up$/,
    );
    expect(e.refusal?.details).toMatchObject({ exit_status: '4', control_channel: 'never' });
  });
});
