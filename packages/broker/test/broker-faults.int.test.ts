// The broker end to end under faults, with real processes: hostile first
// frames, a peer of another uid, daemons killed mid-handoff, a broker killed
// and restarted under live sessions, and running out of file descriptors.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { FrameClient } from '@handoff/backend-sdk';
import {
  ADMIN_PAYLOAD_PROTOCOL,
  AdminReply,
  AdminRequest,
  AdminVerb,
  ErrorCode,
  encodeFramed,
  FrameDecoder,
  type HelloReply,
  requestFrame,
} from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import { adminRequest } from '../src/client/admin-client.js';
import { connectService } from '../src/client/connect-service.js';
import { helloBytes, liveBrokers, P, rawHello } from './broker-session.js';
import {
  echoService,
  fixtures,
  killPid,
  startProcess,
  str,
  tempDir,
  text,
  tsxArgs,
} from './harness.js';

const { broker, dirs, cleanups } = liveBrokers();

describe('hostile first frames', () => {
  it('answers a bad framing byte, an oversize Hello and garbage with Refused', async () => {
    const b = await broker([echoService('echo')], { helloDeadlineMs: 300 });
    const badVersion = await rawHello(b.socketPath, new Uint8Array([2, 0, 0, 0, 0]));
    expect(badVersion?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.VERSION_UNSUPPORTED },
    });
    const oversize = new Uint8Array(5);
    new DataView(oversize.buffer).setUint32(1, 70 * 1024, true);
    oversize[0] = 1;
    const big = await rawHello(b.socketPath, oversize);
    expect(big?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
    const undecodable = await rawHello(b.socketPath, new Uint8Array([1, 2, 0, 0, 0, 0x0f, 0x0f]));
    expect(undecodable?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
    const upper = await rawHello(b.socketPath, helloBytes({ serviceName: 'Echo' }));
    expect(upper?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
    const liar = await rawHello(b.socketPath, helloBytes({ peerPid: 1 }));
    expect(liar?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
  });

  // Regression (issue 12, case 5): a truncated first frame followed by a
  // half-close was closed without the Refused that DESIGN §2.7 promises.
  it('answers a truncated first frame followed by a half-close with Refused{PEER_REJECTED}', async () => {
    const b = await broker([echoService('echo')], { helloDeadlineMs: 20_000 });
    const t0 = performance.now();
    for (const cut of [1, 4, 5, 7]) {
      const truncated = await rawHello(b.socketPath, helloBytes().subarray(0, cut), { end: true });
      expect(truncated?.result).toMatchObject({
        case: 'refused',
        value: { code: ErrorCode.PEER_REJECTED, reason: expect.stringContaining('truncated') },
      });
    }
    // Answered at the client's end of input, not at the read deadline.
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('answers an admin request followed by a half-close before closing', async () => {
    const b = await broker([echoService('echo')]);
    const request = encodeFramed(
      requestFrame({
        payloadProtocol: ADMIN_PAYLOAD_PROTOCOL,
        requestId: 9n,
        payload: AdminRequest.encode({ verb: AdminVerb.HEALTHZ }),
      }),
    );
    const socket = connect(b.socketPath);
    await once(socket, 'connect');
    socket.end(request);
    const decoder = new FrameDecoder();
    const frames = await new Promise<ReturnType<FrameDecoder['push']>>((resolve) => {
      const got: ReturnType<FrameDecoder['push']> = [];
      socket.on('data', (chunk) => got.push(...decoder.push(chunk)));
      socket.on('error', () => {});
      socket.on('close', () => resolve(got));
    });
    expect(frames.map((f) => f.requestId)).toEqual([9n]);
    expect(AdminReply.decode(frames[0]!.payload).exitCode).toBe(0);
  });

  it('refuses a Hello that never finishes, at the read deadline', async () => {
    const b = await broker([echoService('echo')], { helloDeadlineMs: 300 });
    const t0 = performance.now();
    const slow = await rawHello(b.socketPath, helloBytes().subarray(0, 7));
    expect(slow?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED },
    });
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  // The read deadline is armed only after the first read finds no whole
  // frame (a Hello sent with the connect needs no timer): a client that
  // connects and says nothing must still be refused at the deadline.
  it('refuses a client that connects and sends nothing, at the read deadline', async () => {
    const b = await broker([echoService('echo')], { helloDeadlineMs: 300 });
    const t0 = performance.now();
    const silent = await rawHello(b.socketPath, new Uint8Array(0));
    expect(silent?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.PEER_REJECTED, reason: expect.stringContaining('300 ms') },
    });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('drops a peer of another uid without a reply', async () => {
    const b = await broker([echoService('echo')]);
    const dir = b.socketPath.replace(/\/broker\.sock$/, '');
    chmodSync(dir, 0o711);
    chmodSync(b.socketPath, 0o666);
    const script = `const s=require('net').connect(process.argv[1]);let got=0;s.on('connect',()=>s.write(Buffer.from(process.argv[2],'hex')));s.on('data',d=>got+=d.length);s.on('error',()=>{});s.on('close',()=>console.log('closed after '+got+' bytes'))`;
    const child = spawn(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        '-e',
        script,
        b.socketPath,
        Buffer.from(helloBytes()).toString('hex'),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await once(child, 'exit');
    chmodSync(dir, 0o700);
    expect(out.trim()).toBe('closed after 0 bytes');
  });
});

describe('failures around the broker', () => {
  // A backend that writes client preludes leaves the broker unsure whether
  // the client was told anything, so the broker lets go and the client asks
  // again; a reference-style backend gets a second offer or a fallback relay.
  it.each([
    ['writes client preludes', []],
    ['plain channel', ['--plain-channel']],
  ])(
    'a daemon killed between offer and ack (%s): the client still gets a working connection',
    async (_kind, extra) => {
      const tmp = tempDir('die');
      dirs.push(tmp);
      const b = await broker(
        [echoService('echo', {}, ['--die-on-offer-once', tmp.path('died'), ...extra])],
        { handoffDeadlineMs: 3000 },
      );
      const t0 = performance.now();
      const { socket } = await connectService('echo', {
        version: '1.0.0',
        brokerPath: b.socketPath,
        timeoutMs: 30_000,
      });
      const client = new FrameClient(socket);
      expect(str((await client.request(P, text('survived'))).payload)).toBe('survived');
      client.close();
      expect(performance.now() - t0).toBeLessThan(30_000);
      expect(readFileSync(tmp.path('died'), 'utf8')).toBe('died');
    },
  );

  it('a broker killed with SIGKILL leaves handed-off sessions working; a new broker rediscovers the daemon', async () => {
    const tmp = tempDir('restart');
    dirs.push(tmp);
    const servicesFile = tmp.path('services.json');
    writeFileSync(servicesFile, JSON.stringify([echoService('echo')]));
    const socketPath = tmp.path('run/broker.sock');
    const first = await startProcess([
      ...tsxArgs,
      `${fixtures}/broker.ts`,
      socketPath,
      servicesFile,
    ]);
    cleanups.push(() => first.kill('SIGKILL'));
    const session = await connectService('echo', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 30_000,
    });
    expect(session.route).toBe('handoff');
    const client = new FrameClient(session.socket);
    await client.request(P, text('before'));
    const daemonPid = Number(
      readFileSync(`${session.negotiated.backendPipe}.identity.json`, 'utf8').match(
        /"pid": (\d+)/,
      )![1],
    );
    cleanups.push(() => killPid(daemonPid));
    await first.kill('SIGKILL');
    // The broker is gone; the session is not.
    expect(str((await client.request(P, text('after-broker-death'))).payload)).toBe(
      'after-broker-death',
    );
    const second = await startProcess([
      ...tsxArgs,
      `${fixtures}/broker.ts`,
      socketPath,
      servicesFile,
    ]);
    cleanups.push(() => second.kill('SIGTERM'));
    const again = await connectService('echo', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 30_000,
    });
    const pidNow = Number(
      readFileSync(`${again.negotiated.backendPipe}.identity.json`, 'utf8').match(
        /"pid": (\d+)/,
      )![1],
    );
    expect(pidNow).toBe(daemonPid); // rediscovered, not respawned
    const client2 = new FrameClient(again.socket);
    expect(str((await client2.request(P, text('rediscovered'))).payload)).toBe('rediscovered');
    client2.close();
    client.close();
  });
});

describe('file descriptor pressure', () => {
  it('out of fds: Hellos get Refused{FD_PRESSURE, retry_after_ms}, admin still answers, accepts recover', async () => {
    const tmp = tempDir('fdp');
    dirs.push(tmp);
    const servicesFile = tmp.path('services.json');
    writeFileSync(servicesFile, JSON.stringify([echoService('echo')]));
    const socketPath = tmp.path('run/broker.sock');
    const quoted = [process.execPath, ...tsxArgs, `${fixtures}/broker.ts`, socketPath, servicesFile]
      .map((part) => `'${part.replaceAll("'", `'\\''`)}'`)
      .join(' ');
    const child = spawn('bash', ['-c', `ulimit -n 128 && exec ${quoted}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    await once(child.stdout!, 'data');
    const unknown = () => rawHello(socketPath, helloBytes({ serviceName: 'no-such-service' }));
    expect((await unknown())?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.SERVICE_UNKNOWN },
    });
    // Hold connections that never send a Hello until a Hello is refused for
    // want of fds: each holder is accepted (and kept) while fds last.
    const holders: ReturnType<typeof connect>[] = [];
    let pressure: HelloReply | null = null;
    for (let i = 0; i < 200 && !pressure; i++) {
      const holder = connect(socketPath);
      holder.on('error', () => {});
      await once(holder, 'connect');
      holders.push(holder);
      const reply = await unknown();
      if (reply?.result.case === 'refused' && reply.result.value.code === ErrorCode.FD_PRESSURE)
        pressure = reply;
    }
    expect(pressure?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.FD_PRESSURE, retryAfterMs: 250n },
    });
    // Admin works on the spare fd too.
    const status = await adminRequest(socketPath, { verb: AdminVerb.STATUS, json: true });
    expect(status.exitCode).toBe(0);
    // Free the fds: accepts recover, and the refusals were counted.
    for (const holder of holders) holder.destroy();
    let recovered: HelloReply | null = null;
    for (let i = 0; i < 100; i++) {
      recovered = await unknown();
      if (
        recovered?.result.case === 'refused' &&
        recovered.result.value.code !== ErrorCode.FD_PRESSURE
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(recovered?.result).toMatchObject({
      case: 'refused',
      value: { code: ErrorCode.SERVICE_UNKNOWN },
    });
    const metrics = await adminRequest(socketPath, { verb: AdminVerb.METRICS });
    expect(metrics.body).toMatch(/hello_total\{[^}]*outcome="fd_pressure"[^}]*\} [1-9]/);
  });
});
