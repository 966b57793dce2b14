// A spawned daemon's way to ready: it must attach and pass its probe (the
// registry resolves the waiter) before its ready deadline, and not exit or
// fail to exec first. Failures say how far it got (never connected to the
// control channel, connected but failed its probe) and report its last
// output. Deciding what to spawn, and what ready means, is the registry's
// (backend-registry.ts).
import type { SpawnedProcess } from '@handoff/fdpass';
import { ErrorCode } from '@handoff/protocol';
import type { Backend } from '../backend.js';
import type { DaemonOutput } from '../daemon-spawn.js';
import { OUTPUT_SETTLE_MS, withOutputTail } from '../logs/failure-tail.js';
import { RouteError } from '../route-error.js';
import { signal } from './process-exit.js';

/** How the registry settles a starting backend's spawn (attached and probed, or stopped first). */
export interface Waiter {
  resolve: (b: Backend) => void;
  fail: (e: RouteError) => void;
  /** The daemon connected to the control channel (the registry is about to probe it). */
  attached?: () => void;
  /** Its probe failed: the channel was closed, and it may try again. */
  probeFailed?: (why: string) => void;
}

/** How far a starting daemon got towards ready, for the failure's message. */
interface ReadinessTrace {
  /** Control-channel connections so far, and when the first came (ms after the spawn). */
  attaches: number;
  firstAttachMs: number | null;
  /** The last probe failure, if any. */
  probeError: string | null;
}

/** Why a daemon is not ready yet, in words for the client's Refused text. */
export function whyNotReady(trace: ReadinessTrace): string {
  if (trace.attaches === 0)
    return "it never connected to the broker's control channel (HANDOFF_BROKER_CONTROL)";
  const connected =
    `it connected to the control channel ${trace.attaches === 1 ? 'once' : `${trace.attaches} times`}` +
    ` (first after ${Math.round(trace.firstAttachMs ?? 0)} ms)`;
  return trace.probeError === null
    ? `${connected} but never answered its probe`
    : `${connected} but its probe failed: ${trace.probeError}`;
}

function traceDetails(trace: ReadinessTrace): Record<string, string> {
  return {
    control_channel: trace.attaches === 0 ? 'never' : 'connected',
    ...(trace.probeError === null ? {} : { probe_error: trace.probeError }),
  };
}

export interface ReadinessHost {
  onSpawn(outcome: 'ok' | 'failed'): void;
  /** Forgets a backend that will not become ready. */
  remove(backend: Backend, reason: string): void;
  /** A spawn failed: its message and the daemon's last output. */
  spawnFailed(message: string, tail: string): void;
  /** Where the registry finds the waiter of a starting backend. */
  waiters: Map<Backend, Waiter>;
}

/** Resolves with `backend` once the registry marks it ready; rejects with RouteError BACKEND_SPAWN_FAILED. */
export function awaitReadiness(
  host: ReadinessHost,
  backend: Backend,
  child: SpawnedProcess,
  output: DaemonOutput,
  readyTimeoutMs: number,
): Promise<Backend> {
  const { key } = backend;
  const spawnedAt = performance.now();
  const trace: ReadinessTrace = { attaches: 0, firstAttachMs: null, probeError: null };
  return new Promise<Backend>((resolve, reject) => {
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      if (host.waiters.get(backend) === waiter) host.waiters.delete(backend);
      return true;
    };
    const fail = (message: string, details: Record<string, string>) => {
      if (!settle()) return;
      const all = { ...details, ...traceDetails(trace) };
      host.onSpawn('failed');
      host.remove(backend, message);
      // Its last words may still be in the pipes: wait (briefly) for their end.
      void output.settled(OUTPUT_SETTLE_MS).then(() => {
        const tail = output.tail();
        // 'spawn-failed' (definition, message, tail): status keeps the last one per service.
        host.spawnFailed(message, tail);
        reject(
          new RouteError(ErrorCode.BACKEND_SPAWN_FAILED, withOutputTail(message, tail), 0, {
            service: key,
            stderr_tail: tail,
            ...all,
          }),
        );
      });
    };
    const timer = setTimeout(() => {
      signal(child.pid, 'SIGKILL');
      fail(`${key} was not ready within ${readyTimeoutMs} ms: ${whyNotReady(trace)}`, {
        reason: 'ready timeout',
      });
    }, readyTimeoutMs);
    const waiter: Waiter = {
      resolve: (b: Backend) => {
        if (!settle()) return;
        host.onSpawn('ok');
        resolve(b);
      },
      // Stopped before ready (the broker closing): the process is stop()'s to end.
      fail: (error: RouteError) => {
        if (settle()) reject(error);
      },
      attached: () => {
        trace.attaches++;
        trace.firstAttachMs ??= performance.now() - spawnedAt;
      },
      probeFailed: (why) => {
        trace.probeError = why;
      },
    };
    host.waiters.set(backend, waiter);
    child.once('exit', (code, sig) => {
      if (backend.state === 'starting') {
        // The exit is the reason; how far it got is news only if it got to the channel.
        const status = sig ? `signal ${sig}` : `status ${code}`;
        const got = trace.attaches > 0 ? `: ${whyNotReady(trace)}` : '';
        fail(`${key} exited before it was ready (${status})${got}`, {
          reason: 'exited',
          exit_status: String(code ?? ''),
          exit_signal: String(sig ?? ''),
        });
      } else host.remove(backend, `process exited (${sig ?? code})`);
    });
  });
}
