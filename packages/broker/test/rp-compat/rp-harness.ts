// Shared by the rp-compat integration tests: a temp dir laid out as a
// running-process user's (XDG_RUNTIME_DIR, a private `.servicedef` directory,
// an executable that runs the echo daemon) and a test-side protobuf writer.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { fixtures, tempDir, tsxArgs } from '../harness.js';

/** The payload protocol the echo daemon answers on. */
export const P = 0xf001;

/** A test-side protobuf writer for string and varint fields (independent of the decoder under test). */
export function encodeServicedef(fields: [number, string | number][]): Uint8Array {
  const out: number[] = [];
  const varint = (n: number) => {
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
  };
  for (const [field, value] of fields) {
    if (typeof value === 'number') {
      varint(field << 3);
      varint(value);
    } else {
      const bytes = Buffer.from(value);
      varint((field << 3) | 2);
      varint(bytes.length);
      out.push(...bytes);
    }
  }
  return Uint8Array.from(out);
}

/** A temp dir with XDG_RUNTIME_DIR, a private `.servicedef` dir and an executable running the echo daemon. */
export function rpSetup(name: string) {
  const tmp = tempDir(`rp-${name}`);
  const runtime = tmp.path('xdg');
  mkdirSync(runtime, { mode: 0o700 });
  const defs = tmp.path('defs');
  mkdirSync(defs, { mode: 0o700 });
  const bin = tmp.path('bin');
  mkdirSync(bin, { mode: 0o700 });
  const binary = tmp.path('bin', 'rp-echo');
  const quoted = [process.execPath, ...tsxArgs, `${fixtures}/echo-daemon.ts`]
    .map((a) => `'${a}'`)
    .join(' ');
  writeFileSync(binary, `#!/bin/sh\nexec ${quoted} "$@"\n`);
  chmodSync(binary, 0o700);
  writeFileSync(
    tmp.path('defs', 'rp-echo.servicedef'),
    encodeServicedef([
      [1, 'rp-echo'],
      [2, binary],
      [3, 1], // SHARED_BROKER
      [5, bin],
      [6, '1.0.0'],
    ]),
  );
  const env = { XDG_RUNTIME_DIR: runtime, RUNNING_PROCESS_SERVICE_DEF_DIR: defs };
  return { tmp, env, defs, socket: tmp.path('run', 'broker.sock') };
}
