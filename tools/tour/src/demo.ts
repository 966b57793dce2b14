// `npm run demo`: the main job, scripted end to end. Starts the broker the
// way `npm start` does (its own process, embedded demo-kv configuration),
// then, printing each step: SET and GET through handed-off connections,
// the same store over the daemon's line wire, `handoff-broker probe
// demo-kv`, the broker's metrics, and `handoff-broker shutdown`. Every
// step checks what it shows; any surprise fails the demo.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { adminRequest } from '@handoff/broker';
import { DEMO_KV_SERVICE_NAME, DemoKvClient } from '@handoff/demo-daemon';
import { AdminVerb } from '@handoff/protocol';
import type { Narrator } from './narrate.ts';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..', '..');
const fromSource = ['--conditions=@handoff/source', '--import', 'tsx'];
const brokerCli = join(repo, 'packages', 'broker', 'src', 'cli', 'main.ts');
const serveEntry = join(import.meta.dirname, 'serve.ts');

/** What the demo saw, for the end-to-end test to check beyond the demo's own checks. */
export interface DemoResult {
  socketPath: string;
  routes: string[];
  legacyReplies: string[];
  probe: { exitCode: number; json: Record<string, unknown> };
  metrics: string;
  daemonPid: number;
  brokerExitCode: number | null;
}

export async function runDemo(say: Narrator): Promise<DemoResult> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-demo-'));
  const socketPath = join(dir, 'run', 'broker.sock');
  const env = { ...process.env, HANDOFF_BROKER_SOCKET: socketPath, HANDOFF_LOG_LEVEL: 'warn' };
  let broker: ChildProcess | null = null;
  try {
    say.section('1. Start the broker (npm start, in its own process)');
    broker = spawn(process.execPath, [...fromSource, serveEntry], {
      cwd: repo,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await untilLine(broker, /listening on/);
    say.step(`listening on ${socketPath}; demo-kv is configured but not running yet`);

    say.section('2. SET and GET through the broker (framed requests, payload protocol 0xF0D0)');
    const routes: string[] = [];
    let t0 = performance.now();
    const writer = await DemoKvClient.connect({ brokerPath: socketPath, timeoutMs: 60_000 });
    routes.push(writer.route);
    say.step(
      `connect: the broker spawned demo-kv and handed our connection over — route ${writer.route} (${ms(t0)} incl. the daemon's start-up)`,
    );
    await writer.set('greeting', 'hello from a handed-off connection', { ttlMs: 60_000 });
    say.step('SET greeting "hello from a handed-off connection" (TTL 60 s) → stored');
    writer.close();
    t0 = performance.now();
    const reader = await DemoKvClient.connect({ brokerPath: socketPath });
    routes.push(reader.route);
    const hit = await reader.get('greeting');
    const value = hit && new TextDecoder().decode(hit.value);
    expect(value === 'hello from a handed-off connection', `GET greeting returned ${value}`);
    say.step(`a second connection, route ${reader.route} (${ms(t0)}): GET greeting → "${value}"`);
    reader.close();

    say.section('3. The same store over the legacy line wire (what socat or nc -U would send)');
    const instances = JSON.parse(
      (
        await adminRequest(socketPath, {
          verb: AdminVerb.LIST_INSTANCES,
          json: true,
          serviceName: DEMO_KV_SERVICE_NAME,
        })
      ).body,
    ) as { instances: { endpoint: string; pid: number }[] };
    const daemon = instances.instances[0];
    expect(daemon !== undefined, 'the broker lists no demo-kv instance');
    const lines = ['GET greeting', 'SET lang node', 'STATS'];
    const legacyReplies = await lineSession(daemon!.endpoint, lines);
    for (const [i, line] of lines.entries()) say.step(`${line} → ${legacyReplies[i]}`);
    expect(legacyReplies[0]?.startsWith('VALUE hello'), 'legacy GET did not see the framed SET');
    const framed = await DemoKvClient.connect({ brokerPath: socketPath });
    const lang = await framed.get('lang');
    framed.close();
    expect(lang !== undefined, 'framed GET did not see the legacy SET');
    say.step('framed GET lang → "node": one store behind both wires, on one socket');

    say.section('4. handoff-broker probe demo-kv (verified identity)');
    const probeRun = await cli(['probe', DEMO_KV_SERVICE_NAME], env);
    for (const line of probeRun.stdout.trimEnd().split('\n')) say.detail(line);
    const probeJson = await cli(['probe', DEMO_KV_SERVICE_NAME, '--json'], env);
    expect(probeRun.exitCode === 0 && probeJson.exitCode === 0, 'the probe failed');
    say.step('every check passed: the daemon is who it claims to be (exit code 0)');

    say.section('5. handoff-broker metrics (OpenMetrics, live values)');
    const metrics = (await cli(['metrics'], env)).stdout;
    for (const line of metrics.split('\n')) {
      if (/^(hello_total|handoff_total|active_backends|spawn_attempts_total)\{?/.test(line))
        say.detail(line);
    }
    expect(
      /handoff_total\{outcome="accepted"\} [1-9]/.test(metrics),
      'no accepted handoff counted',
    );

    say.section('6. handoff-broker shutdown');
    const shutdown = await cli(['shutdown'], env);
    say.step(shutdown.stdout.trim() || 'shutdown requested');
    const [brokerExitCode] = (await once(broker, 'exit')) as [number | null];
    broker = null;
    expect(brokerExitCode === 0, `the broker exited with ${brokerExitCode}`);
    expect(!alive(daemon!.pid), `demo-kv (pid ${daemon!.pid}) outlived the broker`);
    expect(!existsSync(socketPath), 'the broker socket was left behind');
    say.step(`broker exited 0; demo-kv (pid ${daemon!.pid}) stopped with it; socket removed`);
    return {
      socketPath,
      routes,
      legacyReplies,
      probe: { exitCode: probeJson.exitCode, json: JSON.parse(probeJson.stdout) },
      metrics,
      daemonPid: daemon!.pid,
      brokerExitCode,
    };
  } finally {
    if (broker && broker.exitCode === null && broker.signalCode === null) {
      broker.kill('SIGTERM');
      await once(broker, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function expect(ok: boolean | undefined, message: string): void {
  if (!ok) throw new Error(`demo check failed: ${message}`);
}

const ms = (t0: number) => `${(performance.now() - t0).toFixed(1)} ms`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once the child prints a line matching `pattern` on stdout. */
function untilLine(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`the broker exited (${code}) before it was listening:\n${seen}`));
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** One line-wire session: each command on its own line, one reply line each. */
async function lineSession(endpoint: string, commands: string[]): Promise<string[]> {
  const socket = connect(endpoint);
  await once(socket, 'connect');
  const replies: string[] = [];
  let pending = '';
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        replies.push(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      if (replies.length >= commands.length) resolve();
    });
    socket.once('error', reject);
    socket.once('close', () => resolve());
  });
  socket.write(`${commands.join('\n')}\n`);
  await done;
  socket.destroy();
  return replies;
}

/** Runs the handoff-broker CLI (from source) and returns its exit code and output. */
async function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ exitCode: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [...fromSource, brokerCli, ...args], {
      cwd: repo,
      env,
    });
    return { exitCode: 0, stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { exitCode: e.code, stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
