// Tour, part 3: the broker. A client asks for a service by name; the
// broker spawns the daemon, hands the client's connection to it, and steps
// out — the client keeps talking on the same socket, to the daemon.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameClient, probeDaemon } from '@handoff/backend-sdk';
import { adminRequest, connectService, createBrokerLogger, startBroker } from '@handoff/broker';
import { AdminVerb } from '@handoff/protocol';
import type { Narrator } from './narrate.ts';

export async function brokerTour(say: Narrator): Promise<void> {
  say.section('3. One socket in front of many daemons (@handoff/broker)');
  const dir = mkdtempSync(join(tmpdir(), 'handoff-tour-broker-'));
  const socketPath = join(dir, 'run', 'broker.sock');
  const broker = await startBroker({
    socketPath,
    // A throwaway broker in a temp dir; the tour runs as root in CI and containers.
    allowRoot: process.geteuid?.() === 0,
    services: [
      {
        name: 'greeter',
        version: '1.0.0',
        command: process.execPath,
        args: [
          '--conditions=@handoff/source',
          '--import',
          'tsx',
          join(import.meta.dirname, 'tour-daemon.ts'),
        ],
      },
    ],
    watchConfig: false,
    logger: createBrokerLogger({ level: 'warn' }),
  });
  try {
    say.step(`broker listening on ${socketPath}`);
    const t0 = performance.now();
    const { socket, route, negotiated } = await connectService('greeter', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 30_000,
    });
    say.step(
      `connectService('greeter'): daemon spawned on demand, route = ${route} (${(performance.now() - t0).toFixed(0)} ms incl. start-up)`,
    );
    const client = new FrameClient(socket);
    const reply = await client.request(0xf001, new TextEncoder().encode('tour'));
    say.step(`on the same socket, now the daemon's: "${new TextDecoder().decode(reply.payload)}"`);
    client.close();
    const verified = await probeDaemon(negotiated.backendPipe);
    say.step(
      `probeDaemon(${negotiated.backendPipe}): identity verified (pid ${verified.identity.pid}, SO_PEERCRED and start time agree) in ${verified.roundTripMs.toFixed(2)} ms`,
    );
    const metrics = await adminRequest(socketPath, { verb: AdminVerb.METRICS });
    const interesting = metrics.body
      .split('\n')
      .filter((l) => /^(hello_total|handoff_total|active_backends|spawn_attempts_total)/.test(l));
    say.step(`metrics from the broker's admin verb:\n        ${interesting.join('\n        ')}`);
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
  say.step('broker closed; it stopped the daemon it had spawned');
}
