// Types of probe-wire.mjs, for the suites' TypeScript that shares it (frames.ts,
// capacity-throughput.ts).
import type { Socket } from 'node:net';

export function connectPath(path: string): Socket;
export function helloBytes(service: string, options?: { handoff?: boolean }): Uint8Array;
export const echoRequest: Uint8Array;
export function readFrames(socket: Socket, frames: number): Promise<void>;
export function childrenOf(pid: number): number[];
export function onlyDaemonOf(brokerPid: number): number;
