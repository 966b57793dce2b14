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
