// lifecycle.cold_start_queue: clients that connect straight to a daemon's
// endpoint while it warms up (a demo daemon held back by slow-daemon.mjs),
// with the broker binding that endpoint before the spawn (ownDaemonSockets,
// the default) and without (the daemon binds its own, as before). With, a
// client waits in the kernel's backlog and is answered once the daemon
// runs; without, it meets ENOENT/ECONNREFUSED and must retry.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type FSWatcher, mkdirSync, mkdtempSync, readFileSync, rmSync, watch } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { line, summarize } from '../measure.ts';
import { oneConnect } from './connect-loops.ts';
import { GET_LINE, goodAnswer, readLine } from './line-wire.ts';
import { nodeFlags, suiteScript } from './paths.ts';
import { emitFailure, emitResult, latency } from './report.ts';
import { writeDemoKvDefinition } from './serve-process.ts';
import { killStrays } from './strays.ts';

const BENCH = 'lifecycle.cold_start_queue';

export interface ColdStartOptions {
  clients: number;
  warmupMs: number;
  /** Client arrivals are spread over this much of the warm-up. */
  spreadMs: number;
}

interface ClientResult {
  /** ms from the daemon's start to its answer; NaN if it never came. */
  answeredMs: number;
  failedConnects: number;
  errors: string[];
}

interface Marker {
  pid: number;
  endpoint: string;
  endpoint_exists: boolean;
}

/** One client: connect to `endpoint`, GET, answer; every failed attempt retried after 10 ms for 20 s. */
async function coldClient(endpoint: string, t0: number): Promise<ClientResult> {
  const result: ClientResult = { answeredMs: Number.NaN, failedConnects: 0, errors: [] };
  const deadline = performance.now() + 20_000;
  while (performance.now() < deadline) {
    const socket = connect({ path: endpoint });
    try {
      await once(socket, 'connect');
      socket.write(GET_LINE);
      const answer = await readLine(socket, 20_000, { rest: '' });
      if (!goodAnswer(answer)) throw new Error(`answer ${answer}`);
      result.answeredMs = performance.now() - t0;
      return result;
    } catch (error) {
      result.failedConnects++;
      result.errors.push((error as NodeJS.ErrnoException).code ?? (error as Error).message);
      await new Promise((r) => setTimeout(r, 10));
    } finally {
      socket.destroy();
    }
  }
  return result;
}

async function runMode(dir: string, own: boolean, options: ColdStartOptions) {
  mkdirSync(dir, { recursive: true });
  const marker = join(dir, 'daemon-started.json');
  const configFile = join(dir, 'demo-kv.json');
  writeDemoKvDefinition(configFile, {
    wrapper: suiteScript('slow-daemon.mjs'),
    env: { BENCH_MARKER: marker, BENCH_WARMUP_MS: String(options.warmupMs) },
  });
  const socketPath = join(dir, 'run', 'broker.sock');
  const broker = spawn(
    process.execPath,
    [...nodeFlags(), suiteScript('broker-process.mjs'), socketPath, configFile, String(own)],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_DIR: dir } },
  );
  try {
    await once(broker.stdout!, 'data');
    let watcher: FSWatcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    const started = new Promise<Marker>((resolve, reject) => {
      watcher = watch(dir, (_event, name) => {
        if (name !== 'daemon-started.json') return;
        try {
          resolve(JSON.parse(readFileSync(marker, 'utf8')) as Marker);
        } catch {
          // Not there yet (the rename of the .tmp is what we wait for).
        }
      });
      timer = setTimeout(() => reject(new Error('the daemon did not start within 30 s')), 30_000);
    });
    // The first Hello spawns the daemon; it is answered once the daemon is ready.
    const trigger = oneConnect(socketPath, 60_000);
    const failedEarly = trigger.then((a) => {
      throw new Error(
        `the Hello that spawns the daemon ended before the daemon started: ${a.error ?? 'answered'}`,
      );
    });
    failedEarly.catch(() => {});
    const note = await Promise.race([started, failedEarly]).finally(() => {
      watcher?.close();
      clearTimeout(timer);
    });
    const t0 = performance.now();
    if (own && !note.endpoint_exists)
      throw new Error(
        `ownDaemonSockets is not in effect: ${note.endpoint} did not exist when the daemon started`,
      );
    const clients = await Promise.all(
      Array.from({ length: options.clients }, async (_, i) => {
        await new Promise((r) => setTimeout(r, (i * options.spreadMs) / options.clients));
        return coldClient(note.endpoint, t0);
      }),
    );
    const first = await trigger;
    if (first.error !== null)
      throw new Error(`the Hello that spawned the daemon failed: ${first.error}`);
    return { clients, endpointBoundBeforeSpawn: note.endpoint_exists };
  } finally {
    broker.kill('SIGTERM');
    await once(broker, 'exit');
  }
}

function summary(clients: ClientResult[]) {
  const answered = clients.filter((c) => Number.isFinite(c.answeredMs));
  const errors: Record<string, number> = {};
  for (const c of clients) for (const e of c.errors) errors[e] = (errors[e] ?? 0) + 1;
  const last = Math.max(...answered.map((c) => c.answeredMs));
  return {
    answered: answered.length,
    gave_up: clients.length - answered.length,
    failed_connects: clients.reduce((n, c) => n + c.failedConnects, 0),
    clients_that_retried: clients.filter((c) => c.failedConnects > 0).length,
    errors,
    answer_after_daemon_start: latency(answered.map((c) => c.answeredMs)),
    rate: summarize([answered.length > 0 ? (answered.length * 1000) / last : 0]),
  };
}

export async function coldStartCase(options: ColdStartOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-cold-'));
  try {
    console.error(
      `# ${BENCH}: ${options.clients} clients during a ${options.warmupMs} ms warm-up, with and without broker-owned sockets`,
    );
    const withOwn = await runMode(join(dir, 'own'), true, options);
    const without = await runMode(join(dir, 'self'), false, options);
    const w = summary(withOwn.clients);
    const b = summary(without.clients);
    emitResult({
      ...line(BENCH, w.rate, 'daemon_binds_own_socket (ownDaemonSockets: false)', b.rate),
      unit: 'clients answered per second from the daemon start',
      clients: options.clients,
      warmup_ms: options.warmupMs,
      spread_ms: options.spreadMs,
      failed_connects: w.failed_connects,
      clients_that_retried: w.clients_that_retried,
      gave_up: w.gave_up,
      errors: w.errors,
      answered_after_daemon_start: w.answer_after_daemon_start,
      baseline_failed_connects: b.failed_connects,
      baseline_clients_that_retried: b.clients_that_retried,
      baseline_gave_up: b.gave_up,
      baseline_errors: b.errors,
      baseline_answered_after_daemon_start: b.answer_after_daemon_start,
      baseline_endpoint_bound_before_spawn: without.endpointBoundBeforeSpawn,
      target: 'with: 0 failed connects; without: fails or retries',
      meets_target: w.failed_connects === 0 && w.gave_up === 0 && b.failed_connects > 0,
    });
  } catch (error) {
    emitFailure(BENCH, error);
  } finally {
    killStrays(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
