// DUMP, DIAGNOSE and the event journal through a real broker (startBroker
// with a state dir) and real daemons (the echo-daemon fixture): a spawned
// daemon and a failed spawn as DUMP and DIAGNOSE show them, and each event
// kind the journal records, from real activity, read back from its file.
import { watch, writeFileSync } from 'node:fs';
import { AdminVerb, ErrorCode } from '@handoff/protocol';
import { TestBroker } from '@handoff/testkit';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { BackendRegistry } from '../src/backend-registry.js';
import { adminRequest } from '../src/client/admin-client.js';
import { ConnectServiceError, connectService } from '../src/client/connect-service.js';
import type { JournalEvent } from '../src/events/event.js';
import { readEvents } from '../src/events/reader.js';
import { liveBrokers } from './broker-session.js';
import { echoService, openFds, tempDir } from './harness.js';

const { broker, cleanups } = liveBrokers();
const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => {
  for (const d of dirs) d.remove();
});
function newDir(): string {
  const d = tempDir('diagnostics');
  dirs.push(d);
  return d.dir;
}
const silent = { logger: pino({ level: 'silent' }) };

async function ask(socketPath: string, verb: AdminVerb, serviceName = '', json = true) {
  const reply = await adminRequest(socketPath, { verb, json, serviceName });
  return { exitCode: reply.exitCode, body: reply.body, doc: json ? JSON.parse(reply.body) : null };
}

/** Polls the journal file until an event passes `match`, for up to 60 s (a loaded machine). */
async function journalled(dir: string, match: (e: JournalEvent) => boolean): Promise<JournalEvent> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = await readEvents(dir, {}, 10_000)
      .then((r) => r.events.find(match))
      .catch(() => undefined);
    if (found) return found;
    if (Date.now() > deadline) throw new Error('timed out waiting for a journal event');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function refusal(service: string, brokerPath: string): Promise<ConnectServiceError> {
  const e = await connectService(service, { version: '1.0.0', brokerPath, timeoutMs: 30_000 }).then(
    (c) => {
      c.socket.destroy();
      throw new Error(`${service} was not refused`);
    },
    (error: unknown) => error,
  );
  expect(e).toBeInstanceOf(ConnectServiceError);
  return e as ConnectServiceError;
}

describe('DUMP and DIAGNOSE', () => {
  it('show a spawned daemon, a failed spawn, every setting with its source, and recent events', async () => {
    const dir = newDir();
    const b = await broker([echoService('echo'), echoService('broken', {}, ['--fail-start'])], {
      stateDir: dir,
      ...silent,
    });
    const connection = await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    cleanups.push(() => void connection.socket.destroy());
    const failed = await refusal('broken', b.socketPath);
    expect(failed.refusal?.code).toBe(ErrorCode.BACKEND_SPAWN_FAILED);
    const daemonPid = b.registry.list().find((d) => d.key === 'echo@1.0.0')?.pid;
    expect(daemonPid).toEqual(expect.any(Number));

    const dump = await ask(b.socketPath, AdminVerb.DUMP);
    expect(dump.exitCode).toBe(0);
    const d = dump.doc;
    expect(Object.keys(d).slice(0, 2)).toEqual(['schema_version', 'ok']);
    expect(d).toMatchObject({
      schema_version: 1,
      ok: true,
      broker: { pid: process.pid, draining: false },
    });
    expect(d.services.map((s: { name: string }) => s.name)).toEqual(['echo', 'broken']);
    const echoValues = d.services[0].values as { key: string; source: string; value: unknown }[];
    const value = (key: string) => echoValues.find((v) => v.key === key);
    // Set by the definition, or left to the default: each says which.
    expect(value('stopGraceMs')).toEqual({
      key: 'stopGraceMs',
      value: 2000,
      source: 'definition',
      detail: 'startBroker services',
    });
    expect(value('fdStoreMax')).toEqual({ key: 'fdStoreMax', value: 16, source: 'default' });
    expect(d.daemons).toEqual([
      {
        service: 'echo',
        version: '1.0.0',
        pid: daemonPid,
        state: 'ready',
        role: 'routed',
        started_at_unix_ms: expect.any(Number),
        endpoint: expect.stringMatching(/echo-1\.0\.0.*\.sock$/),
        connections_routed: 1,
        channel_attached: true,
        spawned: true,
      },
    ]);
    expect(d.channels).toEqual([
      {
        service: 'echo',
        endpoint: d.daemons[0].endpoint,
        peer_pid: daemonPid,
        peer_uid: process.getuid?.(),
        offers_in_flight: 0,
      },
    ]);
    expect(d.handoffs_in_progress).toBe(0);
    expect(d.spawn_budgets).toContainEqual({
      key: 'broken@1.0.0',
      used: 1,
      attempts: 3,
      window_ms: 30_000,
    });
    expect(d.fd_store).toEqual(expect.any(Array));
    const config = d.config as { key: string; value: unknown; source: string }[];
    expect(config.find((c) => c.key === 'state_dir')).toEqual({
      key: 'state_dir',
      value: dir,
      source: 'option',
    });
    expect(config.find((c) => c.key === 'socket_path')).toMatchObject({
      value: b.socketPath,
      source: 'option',
    });
    expect(config.find((c) => c.key === 'handoff_deadline_ms')).toEqual({
      key: 'handoff_deadline_ms',
      value: 5000,
      source: 'default',
    });
    expect(config.find((c) => c.key === 'event_journal_path')?.value).toBe(`${dir}/events.jsonl`);
    const kinds = (d.events as JournalEvent[]).map((e) => `${e.kind} ${e.service ?? ''}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'spawn echo',
        'ready echo',
        'spawn broken',
        'spawn_failed broken',
        'exit broken',
      ]),
    );

    const text = await ask(b.socketPath, AdminVerb.DUMP, '', false);
    expect(text.body).toContain(`broker: pid ${process.pid}`);
    expect(text.body).toMatch(
      /daemons:\n +SERVICE +VERSION +PID .*\n +echo +1\.0\.0 +\d+ +ready +routed +yes/,
    );
    expect(text.body).toMatch(/stopGraceMs +2000 +definition \(startBroker services\)/);

    const diagnosis = await ask(b.socketPath, AdminVerb.DIAGNOSE, 'broken');
    expect(diagnosis.exitCode).toBe(0);
    expect(diagnosis.doc).toMatchObject({
      ok: true,
      service: 'broken',
      definitions: [{ name: 'broken', version: '1.0.0' }],
      daemons: [],
      last_spawn_failure: {
        message: expect.stringContaining('exited before it was ready (status 3)'),
      },
    });
    const events = diagnosis.doc.events as JournalEvent[];
    expect(events.every((e) => e.service === 'broken')).toBe(true);
    expect(events.find((e) => e.kind === 'exit')).toMatchObject({ status: 3 });
    expect(diagnosis.doc.log_tail).toContainEqual(
      expect.objectContaining({
        stream: 'stderr',
        line: 'echo-daemon: refusing to start (as asked)',
      }),
    );
    const echo = await ask(b.socketPath, AdminVerb.DIAGNOSE, 'echo', false);
    expect(echo.body).toMatch(/^service: echo\n/);
    expect(echo.body).toContain(`${daemonPid}`);

    const unknown = await ask(b.socketPath, AdminVerb.DIAGNOSE, 'nosuch');
    expect(unknown.exitCode).toBe(1);
    expect(unknown.doc).toMatchObject({ ok: false, code: 'SERVICE_UNKNOWN' });
    expect((await ask(b.socketPath, AdminVerb.DIAGNOSE, '')).exitCode).toBe(2);
  });
});

describe('the event journal', () => {
  it('records refusals by code, exits by signal, failed probes, fallbacks and restarts', async () => {
    const dir = newDir();
    const marker = newDir();
    writeFileSync(`${marker}/lie`, '');
    const b = await broker(
      [
        echoService('echo'),
        echoService('refuser', {}, ['--refuse-offers']),
        echoService('liar', { readyTimeoutMs: 3000 }, ['--bad-identity-if', `${marker}/lie`]),
      ],
      { stateDir: dir, ...silent },
    );
    expect(await journalled(dir, (e) => e.kind === 'config_reload')).toMatchObject({
      code: 'ok',
      message: '3 service definition(s) loaded',
    });
    expect(await journalled(dir, (e) => e.kind === 'broker_started')).toMatchObject({
      pid: process.pid,
    });

    // A refusal, by its code.
    const unknown = await refusal('nosuch', b.socketPath);
    expect(unknown.refusal?.code).toBe(ErrorCode.SERVICE_UNKNOWN);
    expect(await journalled(dir, (e) => e.kind === 'refused')).toMatchObject({
      service: 'nosuch',
      code: 'SERVICE_UNKNOWN',
    });

    // A daemon killed: its exit, by signal.
    const first = await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    first.socket.destroy();
    const pid = b.registry.list().find((d) => d.key === 'echo@1.0.0')!.pid!;
    process.kill(pid, 'SIGKILL');
    expect(await journalled(dir, (e) => e.kind === 'exit' && e.pid === pid)).toMatchObject({
      service: 'echo',
      signal: 'SIGKILL',
    });

    // A rolling restart: the replacement is promoted.
    await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    }).then((c) => c.socket.destroy());
    const outcome = await (b.registry as unknown as BackendRegistry).restart('echo@1.0.0');
    expect(await journalled(dir, (e) => e.kind === 'restart')).toMatchObject({
      service: 'echo',
      code: 'promoted',
      pid: outcome.newPid,
    });

    // A handoff the daemon refuses: the client is sent to reconnect.
    const reconnected = await connectService('refuser', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    reconnected.socket.destroy();
    expect(reconnected.route).toBe('reconnect');
    await journalled(dir, (e) => e.kind === 'fallback');

    // A daemon whose probe answers with another pid.
    const liar = await refusal('liar', b.socketPath);
    expect(liar.refusal?.code).toBe(ErrorCode.BACKEND_SPAWN_FAILED);
    expect(await journalled(dir, (e) => e.kind === 'probe_failed')).toMatchObject({
      service: 'liar',
      message: expect.stringMatching(/^probe of .* failed/),
    });
  });
});

describe('the broker’s own journal', () => {
  it('records config reloads that fail, and the shutdown, and closes its file with the broker', async () => {
    const dir = newDir();
    const config = `${dir}/services.json`;
    writeFileSync(config, JSON.stringify({ services: [echoService('echo')] }));
    // libuv keeps one inotify fd per loop from the first fs.watch on: not ours to count.
    watch(dir).close();
    const fdsBefore = openFds();
    const started = await TestBroker.start({
      configFile: config,
      watchConfig: true,
      stateDir: dir,
      ...silent,
    });
    expect(await journalled(dir, (e) => e.kind === 'config_reload')).toMatchObject({ code: 'ok' });
    writeFileSync(config, '{ "services": [ oops ] }');
    expect(
      await journalled(dir, (e) => e.kind === 'config_reload' && e.code === 'failed'),
    ).toMatchObject({
      message: expect.stringContaining(config),
    });
    await started.close(500);
    const events = (await readEvents(dir, {}, 100)).events.map((e) => e.kind);
    expect(events.at(-1)).toBe('broker_stopping');
    expect(openFds()).toEqual(fdsBefore);
  });
});
