// Kernel limits that only show up with a low RLIMIT_NOFILE or without root:
// MSG_CTRUNC when the receiver's fd table is full, EMFILE, and ETOOMANYREFS
// from the per-user in-flight fd budget.
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { bundlePeerForUser, foreignUserUnavailable, NOBODY } from '@handoff/testkit';
import { describe, expect, it } from 'vitest';
import { FdServer, type FdSocket } from '../src/index.js';
import { nextEvent } from './helpers.js';
import {
  nodePeerArgs,
  nodePeerPath,
  shellQuote,
  spawnPeer,
  usePeerSandbox,
} from './process-helpers.js';

const sandbox = usePeerSandbox();

const isRoot = process.getuid?.() === 0;
// root (CAP_SYS_RESOURCE) is exempt from the in-flight budget: that test
// drops its peer to nobody, which must not depend on where the checkout is.
const noNobody = isRoot ? foreignUserUnavailable(NOBODY) : null;
if (noNobody !== null) console.warn(`limits: the ETOOMANYREFS test is skipped: ${noNobody}`);

describe('receiver with a nearly full fd table', () => {
  it('MSG_CTRUNC: the fds that arrived are closed, ERR_CONTROL_TRUNCATED is emitted, the socket recovers; EMFILE is typed', async () => {
    const path = sandbox.dir.file('limits.sock');
    const server = await FdServer.listen(path);
    const accepted = nextEvent<FdSocket>(server, 'connection');
    const command = `ulimit -n 64 && exec ${shellQuote([process.execPath, ...nodePeerArgs(['limits', path, 'seqpacket'])])}`;
    const peer = spawnPeer('bash', ['-c', command]);
    const socket = await accepted;
    await peer.line((v: { ready?: boolean }) => v.ready === true);
    const file = openSync('/dev/null', 'r');
    socket.write(Buffer.from('too many for the table'), new Array<number>(200).fill(file));
    socket.write(Buffer.from('one more'), [file]);
    closeSync(file);
    const result = await peer.line<{
      errors: string[];
      message: string;
      fds: number;
      leaked: string[];
      pairError: Record<string, unknown>;
    }>((v) => 'errors' in v);
    expect(result.errors).toEqual(['ERR_CONTROL_TRUNCATED']);
    expect(result.message).toBe('one more');
    expect(result.fds).toBe(1);
    expect(result.leaked).toEqual([]);
    expect(result.pairError).toEqual({ code: 'EMFILE', errno: 24, syscall: 'socketpair' });
    await peer.exited;
    socket.close();
    server.close();
  });
});

describe('per-user in-flight fd budget', () => {
  it('sendmsg fails with ETOOMANYREFS, typed with errno and syscall', async (ctx) => {
    ctx.skip(noNobody !== null, `needs a peer run as nobody: ${noNobody}`);
    const run = async (command: string, args: string[], cwd?: string) => {
      const peer = spawnPeer(command, args, cwd === undefined ? {} : { cwd });
      const result = await peer.line((v: { code?: string }) => 'code' in v || 'error' in v);
      expect(result).toMatchObject({
        code: 'ETOOMANYREFS',
        errno: 109,
        syscall: 'sendmsg',
        writableLength: 0,
      });
      await peer.exited;
    };
    if (!isRoot) {
      const inner = `ulimit -n 64 && exec ${shellQuote([process.execPath, ...nodePeerArgs(['toomanyrefs'])])}`;
      await run('bash', ['-c', inner]);
      return;
    }
    // nobody may not be able to enter the checkout: it runs a bundled copy.
    const bundle = bundlePeerForUser(nodePeerPath);
    try {
      const inner = `ulimit -n 64 && exec ${shellQuote([process.execPath, bundle.script, 'toomanyrefs'])}`;
      await run(
        'setpriv',
        [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'bash', '-c', inner],
        bundle.dir,
      );
    } finally {
      bundle.remove();
    }
  });
});

describe('listening with a spare fd (reserveFd)', () => {
  it('EMFILE on accept: one waiting peer is accepted as "pressure"; accepts recover once fds free up; the spare is taken again', async () => {
    const path = sandbox.dir.file('pressure.sock');
    const command = `ulimit -n 64 && exec ${shellQuote([process.execPath, ...nodePeerArgs(['pressure', path])])}`;
    const peer = spawnPeer('bash', ['-c', command]);
    await peer.line((v: { ready?: boolean }) => v.ready === true);
    const answer = async () => {
      const socket = connect({ path });
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      await once(socket, 'close');
      return Buffer.concat(chunks).toString();
    };
    const say = async (verb: string) => {
      peer.child.stdin!.write(`${verb}\n`);
      await peer.line((v: { done?: string }) => v.done === verb);
    };
    // Full table: the spare answers, and no EMFILE error is reported.
    expect(await answer()).toBe('busy');
    await peer.line((v: { event?: string }) => v.event === 'pressure');
    await say('free');
    // fds are back: accepts recover after the back-off, and the spare is retaken.
    expect(await answer()).toBe('welcome');
    await say('fill');
    expect(await answer()).toBe('busy');
    const events = await peer.line(
      (v: { event?: string; code?: string }) => v.event === 'pressure',
    );
    expect(events).toEqual({ event: 'pressure', code: 'EMFILE' });
    await say('free');
    peer.child.stdin!.write('quit\n');
    expect(await peer.exited).toBe(0);
    expect(peer.stderr()).toBe('');
  });
});
