// Captures the legacy line wire as it is really spoken, for the fuzz
// corpus: commands written by formatCommandLine (the client-side
// formatter), and a session typed as a telnet user would (CRLF, tabs,
// mixed case, mistakes), each sent to a real demo daemon through a relay
// that records both directions. Nothing here is mocked.
import { once } from 'node:events';
import { connect } from 'node:net';
import { recordingRelay, waitUntil } from '@handoff/testkit';
import type { KvCommand } from '../src/kv-service.js';
import { formatCommandLine } from '../src/line-protocol.js';
import { startTestDaemon, tempDir } from './harness.js';

export { readCorpus, writeCorpus } from '@handoff/testkit';

export const corpusDir = new URL('./fixtures/corpus/', import.meta.url);

const enc = new TextEncoder();

const CLIENT_COMMANDS: KvCommand[] = [
  { op: 'set', key: enc.encode('greeting'), value: enc.encode('hello, world'), ttlMs: 0 },
  {
    op: 'set',
    key: Uint8Array.of(0x00, 0x25, 0x0a, 0xff, 0x20),
    value: enc.encode('héllo ✓\r\n'),
    ttlMs: 60_000,
  },
  { op: 'get', key: enc.encode('greeting'), waitMs: 0 },
  { op: 'get', key: Uint8Array.of(0x00, 0x25, 0x0a, 0xff, 0x20), waitMs: 0 },
  { op: 'get', key: enc.encode('missing'), waitMs: 0 },
  { op: 'delete', key: enc.encode('greeting') },
  { op: 'delete', key: enc.encode('greeting') },
  { op: 'stats' },
];

/** Typed by hand: every error the parser has, and the spellings it forgives. */
const TELNET_LINES = [
  'set k v\r\n',
  'get\tk\r\n',
  '\r\n',
  'Set  k2 v2 1000\r\n',
  'SET k\r\n',
  'FLUSH_ALL\r\n',
  'GET bad%zz\r\n',
  'SET k v -1\r\n',
  'GET k\x01\r\n',
  'del k\r\n',
  'stats\r\n',
];

/** STATS counts (uptime, connections) differ between captures. */
export function maskStats(answers: Uint8Array): string {
  return new TextDecoder('latin1')
    .decode(answers)
    .split('\n')
    .map((l) => (l.startsWith('STATS ') ? l.replace(/=\d+/g, '=N') : l))
    .join('\n');
}

/** Sends each line and waits for its answer, through a recording relay to a real demo daemon. */
export async function captureLineSessions(): Promise<Record<string, Uint8Array>> {
  const tmp = tempDir('line-corpus');
  const daemon = await startTestDaemon(tmp.path('kv.sock'));
  const relay = await recordingRelay(tmp.path('relay.sock'), daemon.endpoint);
  const { sessions } = relay;
  const run = async (lines: Uint8Array[]) => {
    const socket = connect(tmp.path('relay.sock'));
    await once(socket, 'connect');
    socket.on('data', () => {});
    const session = () => sessions.at(-1)!;
    const downBytes = () => Buffer.concat(session().down);
    let answered = 0;
    for (const line of lines) {
      socket.write(line);
      // A blank line has no answer; every other line has exactly one.
      if (line.every((b) => b === 0x0d || b === 0x0a)) continue;
      answered++;
      await waitUntil(() => countLines(downBytes()) >= answered);
    }
    socket.destroy();
    await waitUntil(() => session().up.length > 0);
  };
  try {
    await run(CLIENT_COMMANDS.map(formatCommandLine));
    await run(TELNET_LINES.map((l) => enc.encode(l)));
  } finally {
    relay.close();
    await daemon.close();
    tmp.remove();
  }
  const [commands, telnet] = sessions;
  return {
    'client-commands': new Uint8Array(Buffer.concat(commands!.up)),
    'client-answers': new Uint8Array(Buffer.concat(commands!.down)),
    'telnet-session': new Uint8Array(Buffer.concat(telnet!.up)),
    'telnet-answers': new Uint8Array(Buffer.concat(telnet!.down)),
  };
}

const countLines = (b: Uint8Array) => b.reduce((n, x) => n + (x === 0x0a ? 1 : 0), 0);
