// The identity sidecar (DESIGN §2.6): a JSON file beside a daemon's socket
// that lets a restarted broker rediscover it. Written atomically (temp file
// + rename, mode 0600) with keys in the reference's order; a missing file
// means "no daemon", a malformed one is a typed error naming the field.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DaemonProcess } from '@handoff/protocol';
import { BackendSdkError } from './errors.js';
import type { DaemonIdentity } from './probe-answer.js';

/** Sidecars are small; anything bigger is not one (and not read into memory). */
const MAX_SIDECAR_BYTES = 64 * 1024;

export class IdentitySidecarError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:IdentitySidecarError';
  override readonly name = 'IdentitySidecarError';
  declare readonly code: 'MALFORMED_SIDECAR';
  readonly path: string;
  /** The JSON key at fault, when one is. */
  readonly field: string | undefined;
  constructor(path: string, message: string, field?: string, cause?: unknown) {
    super('MALFORMED_SIDECAR', `${path}: ${message}`, { cause });
    this.path = path;
    this.field = field;
  }
}

/** Pretty JSON in the reference's key order; u64 written as a JSON number. */
export function formatIdentitySidecar(identity: DaemonIdentity): string {
  const p = identity.process;
  const bytes = (b: Uint8Array) => Array.from(b);
  const doc = {
    pid: p.pid,
    exe_path: p.exePath,
    exe_hash_algorithm: p.exeHashAlgorithm,
    exe_hash: bytes(p.exeHash),
    legacy_exe_sha256: bytes(identity.legacyExeSha256),
    boot_id: p.bootId,
    ipc_endpoint: {
      namespace_id: p.ipcEndpoint?.namespaceId ?? '',
      path: p.ipcEndpoint?.path ?? '',
    },
    started_at_unix_ms: '\u0000STARTED\u0000',
    idle_timeout_secs: p.idleTimeoutSecs ?? null,
  };
  // JSON.stringify cannot write a bigint; splice the exact digits in.
  return `${JSON.stringify(doc, null, 2).replace('"\\u0000STARTED\\u0000"', p.startedAtUnixMs.toString())}\n`;
}

/** Writes the sidecar atomically with mode 0600. */
export async function writeIdentitySidecar(path: string, identity: DaemonIdentity): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(formatIdentitySidecar(identity));
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Removes the sidecar; a missing one is fine. */
export async function removeIdentitySidecar(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** Reads a sidecar: null when there is none; IdentitySidecarError when malformed. */
export async function readIdentitySidecar(path: string): Promise<DaemonIdentity | null> {
  let text: string;
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      if (size > MAX_SIDECAR_BYTES)
        throw new IdentitySidecarError(
          path,
          `is ${size} bytes, over the ${MAX_SIDECAR_BYTES}-byte cap`,
        );
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return parseIdentitySidecar(text, path);
}

/** Parses sidecar JSON text; `path` only labels errors. */
export function parseIdentitySidecar(text: string, path = '<sidecar>'): DaemonIdentity {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new IdentitySidecarError(
      path,
      `is not JSON: ${(error as Error).message}`,
      undefined,
      error,
    );
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new IdentitySidecarError(path, 'is not a JSON object');
  const d = doc as Record<string, unknown>;
  const fail = (field: string, want: string): never => {
    throw new IdentitySidecarError(path, `field ${field} must be ${want}`, field);
  };
  const uint = (field: string, max: number): number => {
    const v = d[field];
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max
      ? v
      : fail(field, `an integer in 0..${max}`);
  };
  const str = (value: unknown, field: string): string =>
    typeof value === 'string' ? value : fail(field, 'a string');
  const hash = (field: string, required: boolean): Uint8Array => {
    const v = d[field];
    if (v === undefined && !required) return new Uint8Array(32);
    if (
      !Array.isArray(v) ||
      v.length !== 32 ||
      !v.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)
    ) {
      return fail(field, 'an array of 32 integers 0..255');
    }
    return Uint8Array.from(v as number[]);
  };
  const endpoint = d.ipc_endpoint;
  if (typeof endpoint !== 'object' || endpoint === null || Array.isArray(endpoint))
    fail('ipc_endpoint', 'an object');
  const e = endpoint as Record<string, unknown>;
  const idle = d.idle_timeout_secs;
  if (
    idle !== null &&
    idle !== undefined &&
    !(typeof idle === 'number' && Number.isInteger(idle) && idle >= 0 && idle <= 0xffff_ffff)
  ) {
    fail('idle_timeout_secs', 'null or an integer');
  }
  return {
    process: DaemonProcess.create({
      pid: uint('pid', 0xffff_ffff),
      exePath: str(d.exe_path, 'exe_path'),
      exeHashAlgorithm: str(d.exe_hash_algorithm, 'exe_hash_algorithm'),
      exeHash: hash('exe_hash', true),
      bootId: str(d.boot_id, 'boot_id'),
      ipcEndpoint: {
        namespaceId: str(e.namespace_id, 'ipc_endpoint.namespace_id'),
        path: str(e.path, 'ipc_endpoint.path'),
      },
      startedAtUnixMs: BigInt(uint('started_at_unix_ms', Number.MAX_SAFE_INTEGER)),
      idleTimeoutSecs: typeof idle === 'number' ? idle : undefined,
    }),
    legacyExeSha256: hash('legacy_exe_sha256', false),
  };
}
