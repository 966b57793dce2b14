// The endpoint cache's pure parts: which calls may use it (the option, the
// environment and their precedence), its key, and the /proc start-time
// parser on stat lines whose command name holds spaces and parentheses.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { FrameDecoder } from '@handoff/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CACHE_SESSION_VERB,
  cacheSessionReportsSettled,
  noteCacheSession,
} from '../src/client/cache-session-report.js';
import {
  ENDPOINT_CACHE_DEFAULT,
  ENDPOINT_CACHE_ENV,
  endpointCacheEnabled,
  endpointCacheKey,
} from '../src/client/endpoint-cache.js';
import {
  procStartTicks,
  procStartTicksAt,
  startTicksIn,
  startTicksOf,
} from '../src/client/proc-start-time.js';
import { openFds, tempDir } from './harness.js';

const saved = process.env[ENDPOINT_CACHE_ENV];
afterEach(() => {
  if (saved === undefined) delete process.env[ENDPOINT_CACHE_ENV];
  else process.env[ENDPOINT_CACHE_ENV] = saved;
});

describe('endpointCacheEnabled', () => {
  it('follows the option, then the environment, then the default; env off wins', () => {
    delete process.env[ENDPOINT_CACHE_ENV];
    expect(endpointCacheEnabled(undefined)).toBe(ENDPOINT_CACHE_DEFAULT);
    expect(endpointCacheEnabled(true)).toBe(true);
    expect(endpointCacheEnabled(false)).toBe(false);
    process.env[ENDPOINT_CACHE_ENV] = ' ON ';
    expect(endpointCacheEnabled(undefined)).toBe(true);
    expect(endpointCacheEnabled(false)).toBe(false);
    for (const off of ['off', '0', 'false', 'No']) {
      process.env[ENDPOINT_CACHE_ENV] = off;
      expect(endpointCacheEnabled(true)).toBe(false);
      expect(endpointCacheEnabled(undefined)).toBe(false);
    }
    process.env[ENDPOINT_CACHE_ENV] = 'whatever';
    expect(endpointCacheEnabled(undefined)).toBe(ENDPOINT_CACHE_DEFAULT);
    expect(endpointCacheEnabled(true)).toBe(true);
  });

  it('keys entries by broker, service and version', () => {
    const k = endpointCacheKey('/run/b.sock', 'echo', '1.0.0');
    expect(k).not.toBe(endpointCacheKey('/run/b.sock', 'echo', '1.0.1'));
    expect(k).not.toBe(endpointCacheKey('/run/c.sock', 'echo', '1.0.0'));
    expect(k).not.toBe(endpointCacheKey('/run/b.sock', 'echo2', '1.0.0'));
  });
});

describe('start time from /proc/<pid>/stat', () => {
  const tail = 'S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21';
  it('reads field 22 after a command name with spaces and parentheses', () => {
    expect(startTicksOf(`123 (a) b (c) ${tail}`)).toBe(424242);
    expect(startTicksOf(`123 (node) ${tail}`)).toBe(424242);
  });
  it('says null for malformed lines', () => {
    expect(startTicksOf('123 node S 1 2')).toBeNull();
    expect(startTicksOf('123 (node) S 1 2')).toBeNull();
    expect(startTicksOf(`123 (x) ${tail.replace('424242', '-5')}`)).toBeNull();
  });
  it('parses the same from the bytes, only within the length read', () => {
    const bytes = (line: string) => Buffer.from(line, 'latin1');
    const ok = bytes(`123 (a) b (c) ${tail}\n`);
    expect(startTicksIn(ok, ok.length)).toBe(424242);
    const noNewline = bytes(`123 (node) ${tail}`);
    expect(startTicksIn(noNewline, noNewline.length)).toBe(424242);
    for (const bad of [
      '123 node S 1 2',
      '123 (node) S 1 2',
      `123 (x) ${tail.replace('424242', '-5')}`,
    ])
      expect(startTicksIn(bytes(bad), bad.length)).toBeNull();
    // A shorter read into a buffer that still holds a longer, older line.
    const reused = bytes(`123 (node) ${tail}`);
    reused.write('9 (short) S 1 2', 0, 'latin1');
    expect(startTicksIn(reused, '9 (short) S 1 2'.length)).toBeNull();
    expect(startTicksIn(ok, 0)).toBeNull();
  });
  it('reads through a held /proc fd only while that process exists', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await once(child, 'spawn');
    const pid = child.pid!;
    const fd = openSync(`/proc/${pid}/stat`, 'r');
    try {
      expect(procStartTicksAt(fd)).toBe(procStartTicks(pid));
      expect(procStartTicksAt(fd)).toBeGreaterThan(0);
      child.kill('SIGKILL');
      await once(child, 'exit');
      // Reaped: the fd stands for that process, gone now, whatever has its number.
      expect(procStartTicksAt(fd)).toBeNull();
    } finally {
      closeSync(fd);
    }
  });

  it('reads our own start time, and null for a pid that does not exist', () => {
    expect(procStartTicks(process.pid)).toBeGreaterThan(0);
    expect(procStartTicks(2 ** 22 + 1)).toBeNull();
  });
});

describe('cache session reports', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir('cache-report');
  });
  afterEach(() => tmp.remove());

  it('sends each noted session as one admin request, batched on one connection', async () => {
    const path = tmp.path('broker.sock');
    const seen: string[] = [];
    let connections = 0;
    const server = createServer((socket: Socket) => {
      connections++;
      const decoder = new FrameDecoder();
      socket.on('data', (chunk) => {
        for (const frame of decoder.push(chunk))
          seen.push(`${frame.payloadProtocol.toString(16)}:${frame.payload.length}`);
      });
      socket.on('end', () => socket.end());
    });
    server.listen(path);
    await once(server, 'listening');
    const fds = openFds();
    for (let i = 0; i < 3; i++) noteCacheSession(path, 'echo');
    noteCacheSession(path, 'other');
    await cacheSessionReportsSettled();
    expect(connections).toBe(1);
    expect(seen).toHaveLength(4);
    expect(seen.every((s) => s.startsWith('ad01:'))).toBe(true);
    expect(CACHE_SESSION_VERB).toBe(1002);
    server.close();
    await once(server, 'close');
    expect(openFds()).toBeLessThanOrEqual(fds);
  });

  it('gives up on a broker that is not there, or that never answers, without hanging', async () => {
    const fds = openFds();
    noteCacheSession(tmp.path('nobody.sock'), 'echo');
    await cacheSessionReportsSettled();
    const path = tmp.path('silent.sock');
    const held: Socket[] = [];
    const server = createServer((socket) => {
      held.push(socket);
      socket.on('error', () => {});
    });
    server.listen(path);
    await once(server, 'listening');
    const t0 = performance.now();
    noteCacheSession(path, 'echo');
    await cacheSessionReportsSettled();
    expect(performance.now() - t0).toBeLessThan(5000);
    for (const s of held) s.destroy();
    server.close();
    await once(server, 'close');
    expect(openFds()).toBeLessThanOrEqual(fds);
  });
});
