// The fdpass suite's ping-pong case: one small message at a time over a
// stream socket between two Node processes, each end waiting for the other's
// reply, so every message costs one read and one write on each side with the
// event loop in between. That is how a daemon's requests and the broker's
// control messages travel, and where a per-read cost (a Buffer allocated per
// receive, say) shows. Ours is @handoff/fdpass at both ends; the baseline is
// node:net at both ends, in the same run, rounds alternating.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { type BenchLine, line, summarize } from '../measure.ts';
import { benchRoot, childExecArgv } from './paths.ts';

/** Bytes per message: about one framed request. */
const MESSAGE_BYTES = 100;
const ROUND_TRIPS = 20_000;
const WARMUP_TRIPS = 5_000;
const ROUNDS = 7;

type Impl = 'fdpass' | 'net';

/** One client end: sends a message and resolves once all of it came back. */
interface PingClient {
  trip(message: Buffer): Promise<void>;
  close(): void;
}

/** Round-trip bookkeeping for any socket: `write` sends, `received` counts what came back. */
function roundTrips(write: (message: Buffer) => void) {
  let owed = 0;
  let done: (() => void) | null = null;
  return {
    received(bytes: number): void {
      owed -= bytes;
      if (owed <= 0 && done !== null) {
        const resolve = done;
        done = null;
        resolve();
      }
    },
    trip(message: Buffer): Promise<void> {
      owed += message.length;
      return new Promise((resolve) => {
        done = resolve;
        write(message);
      });
    },
  };
}

async function fdpassClient(path: string): Promise<PingClient> {
  const socket = await FdSocket.connect(path, { kind: 'stream' });
  const trips = roundTrips((message) => socket.write(message));
  socket.on('message', ({ data }: ReceivedMessage) => trips.received(data.length));
  return { trip: trips.trip, close: () => socket.close() };
}

async function netClient(path: string): Promise<PingClient> {
  const socket: Socket = connect({ path });
  await once(socket, 'connect');
  const trips = roundTrips((message) => socket.write(message));
  socket.on('data', (chunk: Buffer) => trips.received(chunk.length));
  return { trip: trips.trip, close: () => socket.destroy() };
}

async function startPeer(impl: Impl, path: string) {
  const script = fileURLToPath(new URL('./ping-pong-peer.ts', import.meta.url));
  const child = spawn(process.execPath, [...childExecArgv, script, impl, path], {
    cwd: benchRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [first] = (await Promise.race([
    once(child.stdout, 'data'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`ping-pong peer (${impl}) exited with ${code}`);
    }),
  ])) as [Buffer];
  let client: PingClient;
  try {
    if (!first.toString().startsWith('ready'))
      throw new Error(`ping-pong peer (${impl}): ${first}`);
    client = await (impl === 'fdpass' ? fdpassClient(path) : netClient(path));
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  return {
    client,
    async stop() {
      client.close();
      child.kill('SIGTERM');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    },
  };
}

/** Round trips per second over `trips` trips. */
async function timeTrips(client: PingClient, message: Buffer, trips: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < trips; i++) await client.trip(message);
  return trips / ((performance.now() - t0) / 1000);
}

export async function pingPongLine(dir: string): Promise<BenchLine> {
  const message = Buffer.alloc(MESSAGE_BYTES, 0x5a);
  const fdpass = await startPeer('fdpass', join(dir, 'ping-fdpass.sock'));
  let net: Awaited<ReturnType<typeof startPeer>>;
  try {
    net = await startPeer('net', join(dir, 'ping-net.sock'));
  } catch (err) {
    await fdpass.stop();
    throw err;
  }
  const peers = { fdpass, net };
  try {
    for (const impl of ['fdpass', 'net'] as const)
      await timeTrips(peers[impl].client, message, WARMUP_TRIPS);
    const rates: Record<Impl, number[]> = { fdpass: [], net: [] };
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which goes first, so neither always follows the other.
      const order: Impl[] = r % 2 === 0 ? ['fdpass', 'net'] : ['net', 'fdpass'];
      const round: Partial<Record<Impl, number>> = {};
      for (const impl of order)
        round[impl] = await timeTrips(peers[impl].client, message, ROUND_TRIPS);
      rates.fdpass.push(round.fdpass!);
      rates.net.push(round.net!);
      ratios.push(round.fdpass! / round.net!);
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    return {
      ...line(
        `fdpass.ping_pong.${MESSAGE_BYTES}b`,
        summarize(rates.fdpass),
        `node.net.ping_pong.${MESSAGE_BYTES}b`,
        summarize(rates.net),
        {
          unit: 'round_trips_per_s',
          ratio_of: `median of ${ROUNDS} alternating rounds`,
          round_ratio_min: Number(sorted[0]!.toFixed(2)),
          round_ratio_median: Number(sorted[sorted.length >> 1]!.toFixed(2)),
          round_ratio_max: Number(sorted.at(-1)!.toFixed(2)),
          round_trips_per_round: ROUND_TRIPS,
        },
      ),
      target: 'none: the per-message path against node:net, on record',
    };
  } finally {
    await Promise.all([peers.fdpass.stop(), peers.net.stop()]);
  }
}
