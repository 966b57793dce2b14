// Types of probe-wire.mjs, for the suites' TypeScript that shares it (frames.ts).
import type { Socket } from 'node:net';

export function helloBytes(service: string, options?: { handoff?: boolean }): Uint8Array;
export const echoRequest: Uint8Array;
export function readFrames(socket: Socket, frames: number): Promise<void>;
