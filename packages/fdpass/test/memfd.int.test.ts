// memfdCreate: a close-on-exec memory file whose contents reach another
// process through SCM_RIGHTS (a Python peer, not this library, reads it and
// writes back into it), usage errors, and no fd left behind.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readlinkSync, readSync, writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFd, FdServer, type FdSocket, memfdCreate } from '../src/index.js';
import { expectFdCount, fdInfoFlags, makeTempDir, O_CLOEXEC, openFdCount } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

// Connects, takes one fd, prints what the file holds, appends a reply, exits.
const PEER = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
msg, fds, flags, addr = socket.recv_fds(s, 64, 4)
size = os.fstat(fds[0]).st_size
print(os.pread(fds[0], size, 0).decode(), flush=True)
os.pwrite(fds[0], b" and back", size)
os.close(fds[0])
`;

describe('memfdCreate', () => {
  it('makes a close-on-exec memfd named as asked', () => {
    const fd = memfdCreate('handoff-test:state');
    try {
      expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe('/memfd:handoff-test:state (deleted)');
      expect(fdInfoFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
    } finally {
      closeFd(fd);
    }
  });

  it('carries its contents to another process and back through a socket', async () => {
    const baseline = openFdCount();
    const dir = makeTempDir();
    cleanups.push(() => dir.cleanup());
    const path = dir.file('memfd.sock');
    const server = await FdServer.listen(path, { kind: 'seqpacket' });
    cleanups.push(() => server.close());
    const fd = memfdCreate('kv-state');
    writeSync(fd, 'state from here');
    const child = spawn('python3', ['-c', PEER, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(() => child.kill('SIGKILL'));
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const [peer] = (await once(server, 'connection')) as [FdSocket];
    peer.write(new Uint8Array([1]), [fd]);
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(stdout).toBe('state from here\n');
    const back = Buffer.alloc(64);
    const n = readSync(fd, back, 0, back.length, 0);
    expect(back.subarray(0, n).toString()).toBe('state from here and back');
    closeFd(fd);
    peer.close();
    server.close();
    await expectFdCount(baseline);
  });

  it('refuses a name with a NUL byte or over 249 bytes, opening nothing', () => {
    const baseline = openFdCount();
    expect(() => memfdCreate('a\0b')).toThrow(TypeError);
    expect(() => memfdCreate('x'.repeat(250))).toThrow(TypeError);
    expect(() => memfdCreate(7 as unknown as string)).toThrow(TypeError);
    expect(openFdCount()).toBe(baseline);
    const fd = memfdCreate('x'.repeat(249));
    closeFd(fd);
  });
});
