// Real processes: a daemon served by serveDaemon in its own process, probed
// and used from this one; a daemon and a client running as another user.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { foreignUserUnavailable, NOBODY } from '@handoff/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type DaemonServer, FrameClient, probeDaemon, serveDaemon } from '../src/index.js';
import { type Fixture, startFixture } from './fixtures/run.js';
import { identityFor, openFds, str, tempDir, text } from './harness.js';

const noNobody = foreignUserUnavailable(NOBODY);
if (noNobody !== null)
  console.warn(`serve-and-probe: tests run as nobody are skipped: ${noNobody}`);
const tmp = tempDir('int');
const fixtures: Fixture[] = [];
const cleanups: (() => void)[] = [];
let n = 0;
const daemon = async (args: string[] = [], asUid?: number) => {
  const endpoint = tmp.path(`daemon${++n}.sock`);
  const f = await startFixture(
    'daemon.ts',
    [endpoint, ...args],
    asUid === undefined ? {} : { asUid },
  );
  fixtures.push(f);
  return { endpoint, fixture: f };
};

afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((f) => f.kill()));
});
afterAll(() => {
  for (const c of cleanups) c();
  tmp.remove();
});

describe('serveDaemon + probeDaemon across processes', () => {
  it('a truthful daemon in another process passes every check', async () => {
    const { endpoint, fixture } = await daemon();
    const verified = await probeDaemon(endpoint, {
      pid: fixture.pid,
      exePath: (await identityFor(endpoint)).process.exePath,
    });
    expect(verified.peer.pid).toBe(fixture.pid);
    expect(verified.identity.idleTimeoutSecs).toBe(60);
    expect(verified.identity.entryScriptPath).toMatch(/fixtures\/daemon\.ts$/);
  });

  it('each tampered identity field fails with its own code', async () => {
    const cases: [string, string, string][] = [
      ['pid=1', 'PEER_CREDENTIALS', 'pid'],
      ['bootId=not-this-boot', 'IDENTITY_MISMATCH', 'bootId'],
      ['exePath=/usr/bin/impostor', 'IDENTITY_MISMATCH', 'exePath'],
      ['endpoint=/tmp/elsewhere.sock', 'ENDPOINT_MISMATCH', 'ipcEndpoint'],
    ];
    const exePath = (await identityFor('/x')).process.exePath;
    for (const [claim, code, field] of cases) {
      const { endpoint } = await daemon(['--claim', claim]);
      await expect(probeDaemon(endpoint, { exePath }), claim).rejects.toMatchObject({
        code,
        field,
      });
    }
  });

  it('an identity left over from an earlier process with the same pid fails the start-time check', async () => {
    // The kernel says this pid started an hour after what the identity
    // claims: exactly what a recycled pid looks like to the prober.
    const { endpoint } = await daemon(['--claim', 'startedAtOffsetMs=-3600000']);
    await expect(probeDaemon(endpoint)).rejects.toMatchObject({ code: 'START_TIME' });
  });

  it('a daemon running as another user fails the peer-credential check', async (ctx) => {
    ctx.skip(noNobody !== null, `needs a process run as nobody: ${noNobody}`);
    // Its own directory, outside our 0700 one, owned by nobody.
    const dir = mkdtempSync(join(tmpdir(), 'handoff-nobody-'));
    chownSync(dir, NOBODY, NOBODY);
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const endpoint = `${dir}/daemon.sock`;
    const f = await startFixture(
      'daemon.ts',
      [endpoint, '--allow-uid', String(process.getuid!())],
      { asUid: NOBODY },
    );
    fixtures.push(f);
    await expect(probeDaemon(endpoint)).rejects.toMatchObject({
      code: 'PEER_CREDENTIALS',
      field: 'uid',
    });
    const verified = await probeDaemon(endpoint, { uid: NOBODY });
    expect(verified.peer.uid).toBe(NOBODY);
  });

  it('a client running as another user is dropped without an answer', async (ctx) => {
    ctx.skip(noNobody !== null, `needs a process run as nobody: ${noNobody}`);
    const endpoint = tmp.path('root-daemon.sock');
    const server: DaemonServer = await serveDaemon({
      endpoint,
      identity: await identityFor(endpoint),
      payloadProtocols: [0xf001],
      onRequest: (f) => f.payload,
    });
    try {
      // The socket dir is 0700 root: open it up just enough for the test's connect.
      chmodSync(tmp.dir, 0o711);
      chmodSync(endpoint, 0o666);
      const rejected = once(server, 'connectionError');
      // A plain node client as nobody: connect, send a frame header, report what comes back.
      const script = `const s=require('net').connect(process.argv[1]);let got=0;s.on('connect',()=>s.write(Buffer.from([1,0,0,0,0])));s.on('data',d=>got+=d.length);s.on('error',()=>{});s.on('close',()=>console.log('closed after '+got+' bytes'))`;
      const probe = spawn(
        'setpriv',
        [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          process.execPath,
          '-e',
          script,
          endpoint,
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      probe.stdout.on('data', (d) => (out += d));
      const [code] = await once(probe, 'exit');
      const [error] = await rejected;
      expect(error).toMatchObject({ code: 'PEER_REJECTED' });
      expect(code).toBe(0);
      expect(out.trim()).toBe('closed after 0 bytes');
    } finally {
      chmodSync(tmp.dir, 0o700);
      await server.close();
    }
  });

  it('pipelines 1,000 concurrent requests to a daemon process', async () => {
    const { endpoint } = await daemon();
    const before = openFds();
    const client = await FrameClient.connect(endpoint);
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => client.request(0xf001, text(`q${i}`))),
    );
    for (const [i, a] of answers.entries()) expect(str(a.payload)).toBe(`q${i}`);
    client.close();
    await expect.poll(openFds).toBe(before);
  });

  it('the daemon removes its socket on SIGTERM', async () => {
    const { endpoint, fixture } = await daemon();
    await fixture.kill();
    expect(fixture.child.exitCode).toBe(0);
    expect(existsSync(endpoint)).toBe(false);
  });
});
