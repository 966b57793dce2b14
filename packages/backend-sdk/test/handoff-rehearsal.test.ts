// The rehearsal of the handoff path a BrokerAttachment runs before its first
// attach (handoff-rehearsal.ts), against a real serveDaemon over real
// socketpairs: the probe is answered through the whole path, the daemon's
// handlers and the server's events see nothing, and no fd is left.
import { afterAll, describe, expect, it } from 'vitest';
import { rehearsalProbe, rehearseHandoff } from '../src/handoff-rehearsal.js';
import { type DaemonServer, type LegacyDetector, serveDaemon } from '../src/index.js';
import { rehearsalAdopter } from '../src/server/daemon-server.js';
import { identityFor, openFds, tempDir } from './harness.js';

const tmp = tempDir('rehearsal');
afterAll(() => tmp.remove());

async function served(
  legacyDetector: LegacyDetector = (buf) => (buf[0] === 0x01 ? 'NotLegacy' : 'Legacy'),
): Promise<{ server: DaemonServer; events: string[]; requests: number[] }> {
  const endpoint = tmp.path(`d${Math.random().toString(36).slice(2)}.sock`);
  const events: string[] = [];
  const requests: number[] = [];
  const server = await serveDaemon({
    endpoint,
    identity: await identityFor(endpoint),
    payloadProtocols: [0xf0d0],
    onRequest: () => {
      requests.push(1);
      return new Uint8Array(0);
    },
    legacyDetector,
    onLegacy: (socket) => {
      events.push('legacy');
      socket.destroy();
    },
  });
  for (const name of ['connection', 'connectionClosed', 'connectionError', 'legacy'])
    server.on(name, () => events.push(name));
  return { server, events, requests };
}

describe('handoff rehearsal', () => {
  it('adopts one connection through the acceptor, answers its probe and leaves no trace', async () => {
    const before = openFds();
    const { server, events, requests } = await served();
    const probe = rehearsalProbe();
    const adopt = rehearsalAdopter(server, probe);
    expect(adopt).not.toBeNull();
    expect(await rehearseHandoff(adopt!, 'svc', probe)).toBe(true);
    // The served end closes once it reads the client's EOF.
    while (server.connectionCount > 0) await new Promise((r) => setTimeout(r, 2));
    expect(events).toEqual([]);
    expect(requests).toEqual([]);
    await server.close({ deadlineMs: 0 });
    expect(openFds()).toBe(before);
  });

  it('a server that refuses the connection makes it false, not a throw, and leaks nothing', async () => {
    const before = openFds();
    const { server } = await served();
    await server.close({ deadlineMs: 0 });
    const probe = rehearsalProbe();
    const adopt = rehearsalAdopter(server, probe);
    expect(adopt).not.toBeNull();
    expect(await rehearseHandoff(adopt!, 'svc', probe, 200)).toBe(false);
    expect(openFds()).toBe(before);
  });

  it('only serveDaemon’s server can be rehearsed against', () => {
    expect(rehearsalAdopter({ adopt: () => true }, rehearsalProbe())).toBeNull();
  });

  it('a daemon whose legacy detector claims the probe is not rehearsed: its onLegacy never sees one', async () => {
    const { server, events } = await served(() => 'Legacy');
    expect(rehearsalAdopter(server, rehearsalProbe())).toBeNull();
    expect(events).toEqual([]);
    await server.close({ deadlineMs: 0 });
  });
});
