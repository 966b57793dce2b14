// The prefork dispatcher with real worker processes: the master runs in this
// test process, workers are test/fixtures/dispatch-worker.ts. Every seed-000
// review finding has its test here or in dispatch-scheduler.test.ts:
// leaked socketpair ends, unchecked sendmsg, orphaned resources after a
// failed start, error messages with the wrong errno. After each test: no
// child process left, the fd count back where it started.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createDispatcher,
  type Dispatcher,
  type DispatcherOptions,
  type ScriptDispatcherOptions,
  type WorkerEvent,
} from '../src/index.js';
import {
  ask,
  childPids,
  load,
  memoryLog,
  openFdCount,
  socketInodes,
  unixSockets,
} from './dispatch-helpers.js';
import { tempDir } from './harness.js';

const run = promisify(execFile);
const workerScript = join(import.meta.dirname, 'fixtures', 'dispatch-worker.ts');
const tsx = ['--conditions=@handoff/source', '--import', 'tsx'];

let tmp: ReturnType<typeof tempDir>;
let baseline = 0;
let open: Dispatcher[] = [];
beforeEach(() => {
  tmp = tempDir('dispatch');
  baseline = openFdCount();
});
afterEach(async () => {
  try {
    await Promise.all(open.map((d) => d.close()));
    open = [];
    await vi.waitFor(() => expect(childPids()).toEqual([]), { timeout: 10_000 });
    await vi.waitFor(() => expect(openFdCount()).toBe(baseline), { timeout: 5_000 });
  } finally {
    tmp.remove();
  }
});

function options(overrides: Partial<ScriptDispatcherOptions> = {}): ScriptDispatcherOptions {
  return {
    listen: { path: tmp.path('d.sock') },
    workers: 2,
    workerScript,
    execArgv: tsx,
    maxQueuePerWorker: 64,
    maxConnectionsPerWorker: 1024,
    spawnBackoff: { initialMs: 50, maxMs: 1000 },
    shutdownDeadline: 2000,
    log: memoryLog().log,
    ...overrides,
  } as ScriptDispatcherOptions;
}

async function start(overrides: Partial<ScriptDispatcherOptions> = {}): Promise<Dispatcher> {
  const d = await createDispatcher(options(overrides));
  open.push(d);
  return d;
}

const workerPids = (d: Dispatcher) => d.stats().perWorker.map((w) => w.pid);

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  await once(s, 'close');
  return port;
}

describe('createDispatcher: serving', () => {
  it("accepts on TCP and Unix listeners and serves in worker processes, with each connection's id and endpoint", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const timersBefore = timers();
    const d = await start({
      listen: [{ port: 0, host: '127.0.0.1' }, { path: tmp.path('d.sock') }],
    });
    const [tcp, unix] = d.endpoints;
    expect(tcp).toMatchObject({ index: 0, transport: 'tcp', family: 'inet', address: '127.0.0.1' });
    expect(unix).toEqual({ index: 1, transport: 'unix', family: 'unix', path: tmp.path('d.sock') });
    const port = tcp!.transport === 'tcp' ? tcp!.port : 0;
    const answers = [
      ...(await load({ port, host: '127.0.0.1' }, 20, 4)).answers,
      ...(await load({ path: tmp.path('d.sock') }, 20, 4)).answers,
    ];
    const pids = new Set(workerPids(d));
    const ids = new Set<number>();
    for (const a of answers) {
      const [pid, slot, gen, id, transport] = a.trim().split(' ');
      expect(pids.has(Number(pid))).toBe(true);
      expect(Number(pid)).not.toBe(process.pid);
      expect(['0', '1']).toContain(slot);
      expect(gen).toBe('0');
      ids.add(Number(id));
      expect(['tcp', 'unix']).toContain(transport);
    }
    expect(answers.filter((a) => a.endsWith(' tcp\n'))).toHaveLength(20);
    expect(ids.size).toBe(40);
    await vi.waitFor(() =>
      expect(d.stats()).toMatchObject({
        workers: 2,
        alive: 2,
        totalAccepted: 40,
        totalDispatched: 40,
        totalCompleted: 40,
        activeConnections: 0,
        errors: 0,
        queueDepth: [0, 0],
      }),
    );
    expect(d.stats().avgAdoptMs).toBeGreaterThan(0);
    expect(d.metrics()).toContain('handoff_dispatcher_dispatched_connections_total 40\n');
    await d.close();
    expect(existsSync(tmp.path('d.sock'))).toBe(false);
    // No timer of the dispatcher outlives it.
    expect(timers()).toBeLessThanOrEqual(timersBefore);
  });

  it('listen.noDelay: TCP_NODELAY set once on the listener reaches every connection the workers serve', async () => {
    const d = await start({
      listen: [
        { port: 0, host: '127.0.0.1', noDelay: true },
        { port: 0, host: '127.0.0.1' },
      ],
    });
    const [fast, plain] = d.endpoints;
    expect(fast).toMatchObject({ transport: 'tcp', noDelay: true });
    expect(plain).toMatchObject({ transport: 'tcp', noDelay: false });
    const at = (e: typeof fast) => ({
      port: e?.transport === 'tcp' ? e.port : 0,
      host: '127.0.0.1',
    });
    // Both workers, several connections each: the kernel's answer, then the endpoint's.
    for (let i = 0; i < 4; i++) {
      expect(await ask(at(fast), 'nodelay?\n')).toBe('true true\n');
      expect(await ask(at(plain), 'nodelay?\n')).toBe('false false\n');
    }
    await d.close();
  });

  it('listen.noDelay is checked: a boolean, and only for TCP', async () => {
    await expect(
      createDispatcher(options({ listen: { path: tmp.path('x.sock'), noDelay: true } as never })),
    ).rejects.toThrow('listen.noDelay is for TCP listeners ({ port }), not { path }');
    await expect(
      createDispatcher(options({ listen: { port: 0, noDelay: 'yes' } as never })),
    ).rejects.toThrow('listen.noDelay must be a boolean');
    expect(childPids()).toEqual([]);
  });

  it('leaks no socketpair end: each side holds only its own end of each channel, and no worker holds the listener', async () => {
    const before = socketInodes('self');
    const d = await start({ workers: 3 });
    const unix = unixSockets();
    const listener = [...unix].find(([, s]) => s.path === tmp.path('d.sock'))![0];
    const mine = [...socketInodes('self')].filter((i) => !before.has(i));
    // The master gained the listener and exactly one seqpacket end per worker.
    const masterEnds = mine.filter((i) => unix.get(i)?.type === 5);
    expect(mine.sort()).toEqual([listener, ...masterEnds].sort());
    expect(masterEnds).toHaveLength(3);
    const workerEnds: number[] = [];
    for (const pid of workerPids(d)) {
      const theirs = [...socketInodes(pid)];
      // Not the listener, not a master end, not another worker's end.
      expect(theirs).not.toContain(listener);
      for (const end of masterEnds) expect(theirs).not.toContain(end);
      const seqpackets = theirs.filter((i) => unix.get(i)?.type === 5);
      expect(seqpackets).toHaveLength(1);
      workerEnds.push(seqpackets[0]!);
    }
    expect(new Set(workerEnds).size).toBe(3);
    for (const end of workerEnds) expect(mine).not.toContain(end);
    await d.close();
    expect(socketInodes('self')).toEqual(before);
  });

  it('pauses accepting while every queue is full — the backlog holds the rest, nobody is refused', async () => {
    const d = await start({ maxQueuePerWorker: 2, maxConnectionsPerWorker: 2 });
    const pids = workerPids(d);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      const results = load({ path: tmp.path('d.sock') }, 24, 24);
      await vi.waitFor(() => expect(d.stats().accepting).toBe(false));
      // Two per stopped worker; the other 20 wait in the kernel's backlog.
      expect(d.stats()).toMatchObject({
        totalAccepted: 4,
        queueDepth: [2, 2],
        waitingConnections: 0,
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(d.stats().totalAccepted).toBe(4);
      for (const pid of pids) process.kill(pid, 'SIGCONT');
      const r = await results;
      expect(r.failures).toEqual([]);
      expect(r.ok).toBe(24);
      expect(d.stats().errors).toBe(0);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
  });

  it('a worker that cannot receive a dispatch (its fd table is full: MSG_CTRUNC) has it sent to another; the log says why', async () => {
    const { log, lines } = memoryLog();
    const d = await start({ log });
    const [a] = workerPids(d);
    process.kill(a!, 'SIGUSR1');
    await new Promise((r) => setTimeout(r, 200));
    const r = await load({ path: tmp.path('d.sock') }, 30, 3);
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(30);
    expect(d.stats().errorsByKind.dropped).toBeGreaterThan(0);
    expect(d.stats().redispatched).toBe(d.stats().errorsByKind.dropped);
    expect(
      lines.some((l) => /could not receive \d+ connection\(s\) \(ERR_CONTROL_TRUNCATED/.test(l)),
    ).toBe(true);
  });
});

describe('createDispatcher: crashes, rotation, shutdown', () => {
  it('kill a worker under load: what it had not adopted is served elsewhere, no client is lost or reset, it is respawned', async () => {
    const { log, lines } = memoryLog();
    const d = await start({ log, maxQueuePerWorker: 16 });
    const [victim] = workerPids(d);
    const respawned = new Promise<WorkerEvent>((resolve) =>
      d.on('workerReady', (e: WorkerEvent) => {
        if (e.generation === 1) resolve(e);
      }),
    );
    // A hung worker: it takes no more connections, the master's queue for it fills.
    process.kill(victim!, 'SIGSTOP');
    const results = load({ path: tmp.path('d.sock') }, 600, 32);
    await vi.waitFor(() => expect(d.stats().queueDepth).toContain(16));
    process.kill(victim!, 'SIGKILL');
    const r = await results;
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(600);
    const again = await respawned;
    expect(again.slot).toBe(d.stats().perWorker.find((w) => w.pid === again.pid)!.slot);
    expect(again.pid).not.toBe(victim);
    const s = d.stats();
    expect(s.redispatched).toBeGreaterThanOrEqual(16);
    expect(s.errorsByKind).toMatchObject({ crash: 1, closed: 0, abandoned: 0, dropped: 0 });
    expect(s.respawns).toBe(1);
    expect(
      lines.some((l) =>
        /worker \d \(pid \d+\) is gone with \d+ connection\(s\) it had not adopted/.test(l),
      ),
    ).toBe(true);
    // The respawned worker serves.
    const after = await load({ path: tmp.path('d.sock') }, 20, 2);
    expect(after.ok).toBe(20);
  });

  it('rotation under load (maxRequestsPerWorker): workers drain and are replaced, no connection refused', async () => {
    const d = await start({ maxRequestsPerWorker: 60 });
    const exits: boolean[] = [];
    d.on('workerExit', (e: { planned: boolean }) => exits.push(e.planned));
    const r = await load({ path: tmp.path('d.sock') }, 1200, 16);
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(1200);
    const generations = new Set(r.answers.map((a) => a.split(' ')[2]));
    expect(generations.size).toBeGreaterThan(5);
    const s = d.stats();
    expect(s.rotations).toBeGreaterThanOrEqual(18);
    expect(s.errors).toBe(0);
    await vi.waitFor(() => expect(exits.length).toBeGreaterThanOrEqual(18));
    expect(exits.every((planned) => planned)).toBe(true);
  });

  it('fd counts stay flat over 100,000 dispatched connections', async () => {
    const d = await start({ maxQueuePerWorker: 256 });
    const target = { path: tmp.path('d.sock') };
    await load(target, 2000, 64, false); // warm up: pools, lazily opened fds
    await vi.waitFor(() => expect(d.stats().activeConnections).toBe(0));
    const masterFds = openFdCount();
    const workers = workerPids(d);
    const workerFds = workers.map((pid) => readdirSync(`/proc/${pid}/fd`).length);
    const r = await load(target, 100_000, 64, false);
    expect(r.failures.slice(0, 5)).toEqual([]);
    expect(r.ok).toBe(100_000);
    await vi.waitFor(() => expect(d.stats().activeConnections).toBe(0));
    await vi.waitFor(() => expect(openFdCount()).toBe(masterFds));
    expect(workerPids(d)).toEqual(workers);
    await vi.waitFor(() =>
      expect(workers.map((pid) => readdirSync(`/proc/${pid}/fd`).length)).toEqual(workerFds),
    );
    const s = d.stats();
    expect(s.totalDispatched).toBe(102_000);
    expect(s.errors).toBe(0);
    // Batching at work: fewer messages than connections.
    expect(s.dispatchMessages).toBeLessThan(102_000);
  }, 120_000);

  it('graceful shutdown: stops accepting, lets open connections finish, kills what is left at the deadline', async () => {
    const d = await start({ shutdownDeadline: 600 });
    const path = tmp.path('d.sock');
    // A client that connects but does not send its line until after close() starts.
    const { connect } = await import('node:net');
    const slow = connect({ path });
    await once(slow, 'connect');
    await vi.waitFor(() => expect(d.stats().totalDispatched).toBe(1));
    // One that never sends: only the deadline ends it.
    const silent = connect({ path });
    await once(silent, 'connect');
    await vi.waitFor(() => expect(d.stats().totalDispatched).toBe(2));
    const silentEnd = once(silent, 'close');
    const t0 = performance.now();
    const closing = d.close();
    expect(existsSync(path)).toBe(false);
    await expect(ask({ path })).rejects.toMatchObject({ code: 'ENOENT' });
    let answer = '';
    slow.setEncoding('utf8');
    slow.on('data', (s: string) => {
      answer += s;
    });
    slow.write('late\n');
    await once(slow, 'end');
    expect(answer).toMatch(/^\d+ \d 0 1 unix\n$/);
    slow.destroy();
    await closing;
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(4000);
    await silentEnd;
    expect(childPids()).toEqual([]);
  });
});

describe('createDispatcher: a failed start leaves nothing behind', () => {
  it('a worker that exits before it is ready: the others are killed, channels and listeners closed', async () => {
    const path = tmp.path('d.sock');
    const err = await createDispatcher(
      options({
        workers: 3,
        env: { ...process.env, DISPATCH_TEST_FAIL_FROM: `${tmp.dir}:1` },
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WORKER_START_FAILED', name: 'DispatchError' });
    // Which of the two failing workers exits first is up to the scheduler.
    expect((err as Error).message).toMatch(
      /worker \d \(pid \d+\) exited with code 3 before it was ready/,
    );
    expect(childPids()).toEqual([]);
    expect(existsSync(path)).toBe(false);
    expect(openFdCount()).toBe(baseline);
  });

  it('a worker that cannot be spawned (ENOENT): SPAWN_FAILED names the errno; the TCP port is free again', async () => {
    const port = await freePort();
    const missing = join(tmp.dir, 'no-such-node');
    const err = await createDispatcher(
      options({
        listen: [{ path: tmp.path('d.sock') }, { port, host: '127.0.0.1' }],
        execPath: missing,
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'SPAWN_FAILED',
      errnoCode: 'ENOENT',
      syscall: `spawn ${missing}`,
    });
    expect((err as Error).message).toMatch(/cannot spawn worker 0: ENOENT/);
    expect(existsSync(tmp.path('d.sock'))).toBe(false);
    expect(openFdCount()).toBe(baseline);
    // Nothing holds the port: it can be bound again at once.
    const again = createServer().listen(port, '127.0.0.1');
    await once(again, 'listening');
    again.close();
    await once(again, 'close');
  });

  it('a listener that cannot bind (EADDRINUSE): LISTEN_FAILED names it, the listener opened before it is closed, no worker spawned', async () => {
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as { port: number };
    try {
      const err = await createDispatcher(
        options({ listen: [{ path: tmp.path('d.sock') }, { port, host: '127.0.0.1' }] }),
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'LISTEN_FAILED',
        errnoCode: 'EADDRINUSE',
        syscall: 'listen',
      });
      expect((err as Error).message).toBe(
        `cannot listen on 127.0.0.1:${port}: EADDRINUSE (listen)`,
      );
      expect(existsSync(tmp.path('d.sock'))).toBe(false);
      expect(childPids()).toEqual([]);
    } finally {
      taken.close();
      await once(taken, 'close');
    }
  });

  for (const [free, code, syscall] of [
    [1, 'CHANNEL_FAILED', 'socketpair'],
    [3, 'SPAWN_FAILED', undefined],
  ] as const) {
    it(`with ${free} free fd(s) after the listener: ${code} with errno EMFILE, and every fd already taken is given back`, async () => {
      const path = tmp.path('m.sock');
      const { stdout } = await run(
        'prlimit',
        [
          '--nofile=128:128',
          process.execPath,
          ...tsx,
          join(import.meta.dirname, 'fixtures', 'dispatch-master.ts'),
          String(free),
          path,
          workerScript,
        ],
        { cwd: join(import.meta.dirname, '..') },
      );
      const report = JSON.parse(stdout.trim().split('\n').at(-1)!);
      expect(report.error).toMatchObject({ code, errnoCode: 'EMFILE' });
      if (syscall) expect(report.error.syscall).toBe(syscall);
      expect(report.error.message).toContain('EMFILE');
      // Only what the call opened counts: `gone` (an fd the runtime closed
      // meanwhile) rides along in the message for whoever reads a failure.
      expect(report.opened, JSON.stringify(report)).toEqual([]);
      expect(report.children).toBe(0);
      expect(report.socketFileLeft).toBe(false);
    });
  }
});

describe('createDispatcher({ workerFn })', () => {
  it('one file, like node:cluster: the master re-runs itself as the workers, which serve with workerFn', async () => {
    const path = tmp.path('single.sock');
    const child = spawn(
      process.execPath,
      [...tsx, join(import.meta.dirname, 'fixtures', 'dispatch-single-file.ts'), path],
      { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const exited = once(child, 'exit').then(([code]) => {
        throw new Error(`the single-file master exited (${code}) before it was ready`);
      });
      const [line] = (await Promise.race([once(child.stdout!, 'data'), exited])) as [Buffer];
      exited.catch(() => {});
      const masterPid = Number(line.toString().split(' ')[1]);
      expect(masterPid).toBe(child.pid);
      const answers = (await load({ path }, 10, 2)).answers;
      expect(answers).toHaveLength(10);
      for (const a of answers) {
        expect(a).toMatch(/^worker \d+\n$/);
        expect(Number(a.split(' ')[1])).not.toBe(masterPid);
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
    }
  });
});

export type { DispatcherOptions };
