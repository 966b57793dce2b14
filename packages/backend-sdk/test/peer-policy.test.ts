import { FdSocket } from '@handoff/fdpass';
import { describe, expect, it } from 'vitest';
import { PeerPolicy } from '../src/index.js';

const me = process.getuid!();

describe('PeerPolicy', () => {
  it('allows only our own uid by default', () => {
    const policy = new PeerPolicy();
    expect(policy.allowedUids).toEqual([me]);
    expect(policy.allowsUid(me)).toBe(true);
    expect(policy.allowsUid(me + 1)).toBe(false);
  });

  it('allows exactly the uids it is given', () => {
    const policy = new PeerPolicy([12345, 12346]);
    expect(policy.allowedUids).toEqual([12345, 12346]);
    expect(policy.allowsUid(12346)).toBe(true);
    expect(policy.allowsUid(me)).toBe(false);
    expect(new PeerPolicy([]).allowsUid(me)).toBe(false);
  });

  it('judges credentials already read, saying why a peer is refused', () => {
    const peer = { pid: 4242, uid: 12345, gid: 12345 };
    expect(new PeerPolicy([12345]).checkPeer(peer)).toEqual({ allowed: true, peer });
    expect(new PeerPolicy().checkPeer(peer)).toEqual({
      allowed: false,
      peer,
      reason: 'peer pid 4242 runs as uid 12345, not allowed',
    });
  });

  it("reads a socket's kernel credentials and judges them", () => {
    const [a, b] = FdSocket.pair('stream');
    try {
      const allowed = new PeerPolicy().check(a);
      expect(allowed).toMatchObject({ allowed: true, peer: { pid: process.pid, uid: me } });
      const refused = new PeerPolicy([12345]).check(b);
      expect(refused).toMatchObject({
        allowed: false,
        peer: { pid: process.pid, uid: me },
        reason: `peer pid ${process.pid} runs as uid ${me}, not allowed`,
      });
    } finally {
      a.close();
      b.close();
    }
  });

  it('refuses, without throwing, a socket whose credentials cannot be read', () => {
    const verdict = new PeerPolicy().check(-1);
    expect(verdict.allowed).toBe(false);
    if (verdict.allowed) return;
    expect(verdict.peer).toBeUndefined();
    expect(verdict.reason).toMatch(/^cannot read peer credentials: /);
    expect(verdict.cause).toBeInstanceOf(Error);
  });
});
