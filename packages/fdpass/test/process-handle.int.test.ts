// ProcessHandle and peerIsProcess against real processes: a Python child
// listening on a Unix socket is the peer, and its exit (with the pid
// recorded on our connection still naming it) is the case a pid alone
// cannot tell apart from a recycled pid.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  closeFd,
  duplicateFd,
  FdPassError,
  fdOf,
  ProcessHandle,
  peerCredentials,
  peerIsProcess,
} from '../src/index.js';
import { expectFdCount, fdInfoFlags, makeTempDir, O_CLOEXEC, openFdCount } from './helpers.js';

const uid = process.getuid!();

// Accepts connections and keeps them until stdin closes.
const LISTENER = `
import socket, sys, threading
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(16)
kept = []
def serve():
    while True:
        kept.append(s.accept()[0])
threading.Thread(target=serve, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
`;

describe('ProcessHandle and peerIsProcess', () => {
  const cleanups: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function listener(): Promise<{ child: ChildProcess; path: string }> {
    const dir = makeTempDir();
    cleanups.push(() => dir.cleanup());
    const path = dir.file('peer.sock');
    const child = spawn('python3', ['-c', LISTENER, path], { stdio: ['pipe', 'pipe', 'inherit'] });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
    await once(child.stdout!, 'data');
    return { child, path };
  }

  async function connectTo(path: string): Promise<Socket> {
    const socket = createConnection(path);
    cleanups.push(() => void socket.destroy());
    await once(socket, 'connect');
    return socket;
  }

  it('names a running process, and says when it has exited (fd close-on-exec, closed once)', async () => {
    const { child } = await listener();
    const handle = ProcessHandle.open(child.pid!);
    expect(handle.pid).toBe(child.pid);
    expect(fdInfoFlags(handle.fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    expect(handle.hasExited()).toBe(false);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(handle.hasExited()).toBe(true);
    const withHandle = openFdCount();
    handle.close();
    handle.close();
    expect(handle.fd).toBe(-1);
    expect(() => handle.hasExited()).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_FD' }) as unknown as Error,
    );
    await expectFdCount(withHandle - 1);
  });

  it('matches the peer process and uid, and nothing else', async () => {
    const { child, path } = await listener();
    const handle = ProcessHandle.open(child.pid!);
    cleanups.push(() => handle.close());
    const socket = await connectTo(path);
    expect(peerIsProcess(socket, handle, uid)).toBe(true);
    expect(
      peerIsProcess((socket as unknown as { _handle: { fd: number } })._handle.fd, handle, uid),
    ).toBe(true);
    expect(peerIsProcess(socket, handle, uid + 1)).toBe(false);

    // A peer in another process (this one) is not it.
    const dir = makeTempDir();
    cleanups.push(() => dir.cleanup());
    const server = createServer((s) => s.destroy());
    server.listen(dir.file('own.sock'));
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const own = await connectTo(dir.file('own.sock'));
    expect(peerIsProcess(own, handle, uid)).toBe(false);
    const self = ProcessHandle.open(process.pid);
    cleanups.push(() => self.close());
    expect(peerIsProcess(own, self, uid)).toBe(true);
  });

  it('says false once the peer has exited, though SO_PEERCRED still names its pid', async () => {
    const { child, path } = await listener();
    const handle = ProcessHandle.open(child.pid!);
    cleanups.push(() => handle.close());
    const socket = await connectTo(path);
    socket.on('error', () => {});
    // Our own copy of the fd: Node closes the socket at the peer's EOF.
    const fd = duplicateFd(fdOf(socket));
    cleanups.push(() => void closeFd(fd));
    expect(peerIsProcess(fd, handle, uid)).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(peerCredentials(fd).pid).toBe(child.pid);
    expect(peerIsProcess(fd, handle, uid)).toBe(false);
  });

  it('says null where the kernel names no peer: a destroyed socket, a non-socket fd', async () => {
    const { child, path } = await listener();
    const handle = ProcessHandle.open(child.pid!);
    cleanups.push(() => handle.close());
    const socket = await connectTo(path);
    socket.destroy();
    expect(peerIsProcess(socket, handle, uid)).toBeNull();
    expect(peerIsProcess(handle.fd, handle, uid)).toBeNull();
  });

  it('exited() resolves when a process it did not spawn exits, with no timer and no fd left', async () => {
    // An orphan: the shell starts sleep in the background and exits, so
    // sleep is not our child (no 'exit' event, no waitpid), like a daemon a
    // broker adopted from its predecessor.
    const shell = spawn('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(shell.stdout!, 'data')) as [Buffer];
    const pid = Number(line.toString().trim());
    cleanups.push(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    });
    // 'close': the shell's pipe is closed too, so the fd count is settled.
    await once(shell, 'close');
    const before = openFdCount();
    const handle = ProcessHandle.open(pid);
    const exited = handle.exited({ ref: false });
    expect(handle.exited()).toBe(exited);
    let settled = false;
    void exited.then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(settled).toBe(false);
    const t0 = performance.now();
    process.kill(pid, 'SIGKILL');
    await exited;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(handle.hasExited()).toBe(true);
    handle.close();
    await expectFdCount(before);
  });

  it('exited() resolves at once for a process already gone, and rejects once the handle is closed', async () => {
    const { child } = await listener();
    const handle = ProcessHandle.open(child.pid!);
    child.kill('SIGKILL');
    await once(child, 'exit');
    await expect(handle.exited()).resolves.toBeUndefined();
    handle.close();
    await expect(handle.exited()).resolves.toBeUndefined();

    const closed = ProcessHandle.open(process.pid);
    closed.close();
    await expect(closed.exited()).rejects.toMatchObject({ code: 'ERR_INVALID_FD' });

    const { child: running } = await listener();
    const before = openFdCount();
    const waiting = ProcessHandle.open(running.pid!);
    const pending = waiting.exited();
    waiting.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_INVALID_FD' });
    await expectFdCount(before);
    // Dropped unawaited and then closed: no unhandled rejection.
    const dropped = ProcessHandle.open(running.pid!);
    void dropped.exited({ ref: false });
    dropped.close();
    await new Promise((r) => setTimeout(r, 20));
  });

  it('exited() keeps the event loop alive unless ref is false', async () => {
    const sleeper = spawn('sleep', ['30']);
    cleanups.push(() => {
      if (sleeper.exitCode === null) sleeper.kill('SIGKILL');
    });
    const src = new URL('../src/index.ts', import.meta.url).href;
    const script = (ref: boolean) =>
      `import { ProcessHandle } from ${JSON.stringify(src)};` +
      `const h = ProcessHandle.open(${sleeper.pid});` +
      `h.exited({ ref: ${ref} }).then(() => { console.log('exited'); h.close(); });` +
      `console.log('waiting');`;
    const run = (ref: boolean) =>
      spawn(
        process.execPath,
        [
          '--conditions=@handoff/source',
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          script(ref),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
    const output = (child: ChildProcess) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      return () => out;
    };
    // ref: false — nothing else keeps it alive: it exits while sleep runs.
    const unref = run(false);
    const unrefOut = output(unref);
    const [unrefCode] = (await once(unref, 'exit')) as [number];
    expect(unrefCode).toBe(0);
    expect(unrefOut()).toBe('waiting\n');
    expect(sleeper.exitCode).toBeNull();
    // ref: true — it waits for sleep's exit, then says so and exits.
    const reffed = run(true);
    const reffedOut = output(reffed);
    cleanups.push(() => {
      if (reffed.exitCode === null) reffed.kill('SIGKILL');
    });
    await once(reffed.stdout!, 'data');
    await new Promise((r) => setTimeout(r, 300));
    expect(reffed.exitCode).toBeNull();
    sleeper.kill('SIGKILL');
    const [reffedCode] = (await once(reffed, 'exit')) as [number];
    expect(reffedCode).toBe(0);
    expect(reffedOut()).toBe('waiting\nexited\n');
  });

  it('fails typed: no such process, a bad pid or uid, a closed handle', async () => {
    const gone = spawn('true');
    await once(gone, 'exit'); // reaped by Node: the pid names nobody now
    const error = (() => {
      try {
        ProcessHandle.open(gone.pid!).close();
        return null;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(FdPassError);
    expect(error).toMatchObject({ code: 'ESRCH', syscall: 'pidfd_open' });
    for (const pid of [0, -1, 1.5, 2 ** 31, Number.NaN])
      expect(() => ProcessHandle.open(pid)).toThrow(TypeError);
    const handle = ProcessHandle.open(process.pid);
    expect(() => peerIsProcess(0, handle, -1)).toThrow(TypeError);
    expect(() => peerIsProcess(0, handle, 2 ** 32)).toThrow(TypeError);
    handle.close();
    expect(() => peerIsProcess(0, handle, uid)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_FD' }) as unknown as Error,
    );
  });
});
