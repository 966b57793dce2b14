// Who may talk to us over a Unix socket: the one owner of the peer-uid
// allow-list that serveDaemon, the handoff acceptor and the broker all apply
// (SO_PEERCRED). It judges a peer; what a refused peer is told, if anything,
// stays with each caller.
import type { Socket } from 'node:net';
import { type FdSocket, type PeerCredentials, peerCredentials } from '@handoff/fdpass';

/** A peer let in, with its kernel-attested credentials; or refused, and why. */
export type PeerVerdict =
  | { readonly allowed: true; readonly peer: PeerCredentials }
  | {
      readonly allowed: false;
      /** Undefined when the credentials could not be read at all. */
      readonly peer: PeerCredentials | undefined;
      readonly reason: string;
      /** What reading the credentials threw, when that is why. */
      readonly cause?: unknown;
    };

export class PeerPolicy {
  readonly #allowed: ReadonlySet<number>;

  /** Without a list, only peers of our own uid are allowed (none, on a platform without uids). */
  constructor(allowedUids?: readonly number[]) {
    const uid = process.getuid?.();
    this.#allowed = new Set(allowedUids ?? (uid === undefined ? [] : [uid]));
  }

  get allowedUids(): readonly number[] {
    return [...this.#allowed];
  }

  allowsUid(uid: number): boolean {
    return this.#allowed.has(uid);
  }

  /** Judges credentials already read (an FdSocket's, say). */
  checkPeer(peer: PeerCredentials): PeerVerdict {
    if (this.#allowed.has(peer.uid)) return { allowed: true, peer };
    return {
      allowed: false,
      peer,
      reason: `peer pid ${peer.pid} runs as uid ${peer.uid}, not allowed`,
    };
  }

  /** Reads the socket's SO_PEERCRED and judges it; never throws. */
  check(socket: Socket | FdSocket | number): PeerVerdict {
    let peer: PeerCredentials;
    try {
      peer = peerCredentials(socket);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return {
        allowed: false,
        peer: undefined,
        reason: `cannot read peer credentials: ${message}`,
        cause: error,
      };
    }
    return this.checkPeer(peer);
  }
}
