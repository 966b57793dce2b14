// The four demo-kv commands. Each connects through the broker, sends one
// request, and reports: the result on stdout, the route on stderr (both in
// one JSON object with --json). Exit 1 when a GET or DEL finds no key.

import { type Command, EXIT_FAILED, EXIT_OK, type ParsedArgs } from '@handoff/backend-sdk/cli';
import { DemoKvClient } from '../client.js';
import { MAX_TTL_MS } from '../kv-store.js';
import { brokerSocketPath, integerOption, kvCommand } from './command.js';
import {
  type CliIo,
  describeFailure,
  jsonLine,
  routeNote,
  statsJson,
  statsText,
  valueJson,
} from './output.js';

/** Longest timer Node keeps (2^31 − 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

interface Outcome {
  ok: boolean;
  /** On stdout when ok, else on stderr after "demo-kv: ". */
  text: string | Uint8Array;
  /** The command's own fields in the JSON object. */
  fields: Record<string, unknown>;
}

/** Connects, runs `work`, reports. Every expected failure is a message and exit 1, never a throw. */
async function session(
  command: string,
  args: ParsedArgs,
  io: CliIo,
  work: (client: DemoKvClient, timeoutMs: number) => Promise<Outcome>,
): Promise<number> {
  const brokerPath = brokerSocketPath(args, io.env);
  const timeoutMs = integerOption(args, 'timeout', 10_000, MAX_TIMER_MS);
  const json = args.values.json === true;
  let client: DemoKvClient | undefined;
  try {
    client = await DemoKvClient.connect({ brokerPath, timeoutMs });
    if (!json) io.stderr(routeNote(client.route));
    const outcome = await work(client, timeoutMs);
    if (json) {
      io.stdout(jsonLine({ command, route: client.route, ok: outcome.ok, ...outcome.fields }));
    } else if (outcome.ok) io.stdout(outcome.text);
    else io.stderr(`demo-kv: ${outcome.text}`);
    return outcome.ok ? EXIT_OK : EXIT_FAILED;
  } catch (error) {
    const failure = describeFailure(error, brokerPath);
    if (json) {
      io.stdout(jsonLine({ command, route: client?.route ?? null, ok: false, error: failure }));
    } else io.stderr(`demo-kv: ${failure.message}\n`);
    return EXIT_FAILED;
  } finally {
    client?.close();
  }
}

const notFound = (key: string): Outcome => ({
  ok: false,
  text: `${key}: not found\n`,
  fields: { key, found: false },
});

export const getCommand: Command = kvCommand({
  name: 'get',
  summary: 'print the value of KEY (exit 1 when it is not there)',
  positionals: ['KEY'],
  options: { wait: { type: 'string' } },
  help: ['--wait MS       when KEY is missing, wait up to MS for it to be set (daemon cap: 60000)'],
  run: (args, io) => {
    const key = args.positionals[0]!;
    const waitMs = integerOption(args, 'wait', 0, MAX_TTL_MS);
    return session('get', args, io, async (client, timeoutMs) => {
      const hit = await client.get(key, { waitMs, timeoutMs: timeoutMs + waitMs });
      if (!hit) return notFound(key);
      const text = new Uint8Array(hit.value.length + 1);
      text.set(hit.value);
      text[hit.value.length] = 0x0a;
      return {
        ok: true,
        text,
        fields: { key, found: true, ...valueJson(hit.value), ttl_remaining_ms: hit.ttlRemainingMs },
      };
    });
  },
});

export const setCommand: Command = kvCommand({
  name: 'set',
  summary: 'store VALUE under KEY',
  positionals: ['KEY', 'VALUE'],
  options: { ttl: { type: 'string' } },
  help: ['--ttl MS        expire the entry after MS milliseconds (default: never)'],
  run: (args, io) => {
    const [key, value] = args.positionals as [string, string];
    const ttlMs = integerOption(args, 'ttl', 0, MAX_TTL_MS);
    return session('set', args, io, async (client, timeoutMs) => {
      await client.set(key, value, { ttlMs, timeoutMs });
      return {
        ok: true,
        text: `stored ${key}${ttlMs ? ` (expires in ${ttlMs} ms)` : ''}\n`,
        fields: { key, ttl_ms: ttlMs },
      };
    });
  },
});

export const delCommand: Command = kvCommand({
  name: 'del',
  summary: 'delete KEY (exit 1 when it is not there)',
  positionals: ['KEY'],
  options: {},
  help: [],
  run: (args, io) => {
    const key = args.positionals[0]!;
    return session('del', args, io, async (client, timeoutMs) =>
      (await client.delete(key, { timeoutMs }))
        ? { ok: true, text: `deleted ${key}\n`, fields: { key, deleted: true } }
        : { ...notFound(key), fields: { key, deleted: false } },
    );
  },
});

export const statsCommand: Command = kvCommand({
  name: 'stats',
  summary: 'print the daemon’s counters',
  positionals: [],
  options: {},
  help: [],
  run: (args, io) =>
    session('stats', args, io, async (client, timeoutMs) => {
      const stats = await client.stats({ timeoutMs });
      return { ok: true, text: statsText(stats), fields: { stats: statsJson(stats) } };
    }),
});
