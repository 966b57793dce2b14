// Golden tests for running-process's shared broker address (src/rp-compat/address.ts):
// the hash pinned from values computed once with the `b3sum` command, and
// checked against `b3sum` again when it is installed; machine-id fallbacks;
// the 108-byte limit; the directory refusals.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ensureRpBrokerDir,
  rpAddressHash,
  rpMachineId,
  rpSharedBrokerPath,
} from '../../src/rp-compat/address.js';
import { RpAddressError } from '../../src/rp-compat/errors.js';
import { tempDir } from '../harness.js';

const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const BOOT_ID = '8f1b4c7e-2f3a-4b5c-9d6e-7f8091a2b3c4';

/** First 16 hex digits of `printf '<input>' | b3sum`, computed once and pinned. */
const PINNED: Record<string, string> = {
  [`1000:${MACHINE_ID}`]: '9bfab56ad37b16cc',
  [`4242:${MACHINE_ID}`]: 'b44495245f66c429',
  [`1000:boot:${BOOT_ID}`]: 'ea6cfc821a2925dc',
};

const hasB3sum = spawnSync('b3sum', ['--version']).status === 0;

function files(map: Record<string, string>) {
  return (path: string) => map[path];
}

describe('rp-compat address', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  it.each(Object.entries(PINNED))('hashes %s to the pinned b3sum prefix', async (input, want) => {
    const [uid, ...rest] = input.split(':');
    expect(await rpAddressHash(Number(uid), rest.join(':'))).toBe(want);
  });

  it.runIf(hasB3sum).each(Object.keys(PINNED))('agrees with b3sum itself on %s', async (input) => {
    const out = execFileSync('b3sum', ['--no-names'], { input }).toString().trim();
    const [uid, ...rest] = input.split(':');
    expect(await rpAddressHash(Number(uid), rest.join(':'))).toBe(out.slice(0, 16));
  });

  it('puts the socket under XDG_RUNTIME_DIR', async () => {
    const path = await rpSharedBrokerPath({
      env: { XDG_RUNTIME_DIR: '/run/user/1000' },
      uid: 1000,
      readFile: files({ '/etc/machine-id': `${MACHINE_ID}\n` }),
    });
    expect(path).toBe('/run/user/1000/running-process/broker/rpb-v1-9bfab56ad37b16cc-shared.sock');
  });

  it('falls back to /tmp/running-process-<uid> without (or with a relative) XDG_RUNTIME_DIR', async () => {
    const read = files({ '/etc/machine-id': MACHINE_ID });
    for (const env of [{}, { XDG_RUNTIME_DIR: '' }, { XDG_RUNTIME_DIR: 'run/user' }]) {
      expect(await rpSharedBrokerPath({ env, uid: 4242, readFile: read })).toBe(
        '/tmp/running-process-4242/broker/rpb-v1-b44495245f66c429-shared.sock',
      );
    }
  });

  it('reads machine-id from /etc, then /var/lib/dbus, then boot_id', () => {
    expect(rpMachineId(files({ '/etc/machine-id': ' a\n', '/var/lib/dbus/machine-id': 'b' }))).toBe(
      'a',
    );
    // An empty /etc/machine-id (a fresh image) counts as missing.
    expect(rpMachineId(files({ '/etc/machine-id': '\n', '/var/lib/dbus/machine-id': 'b\n' }))).toBe(
      'b',
    );
    expect(rpMachineId(files({ '/proc/sys/kernel/random/boot_id': `${BOOT_ID}\n` }))).toBe(
      `boot:${BOOT_ID}`,
    );
  });

  it('hashes the boot_id fallback as "boot:<id>"', async () => {
    const path = await rpSharedBrokerPath({
      env: { XDG_RUNTIME_DIR: '/run/user/1000' },
      uid: 1000,
      readFile: files({ '/proc/sys/kernel/random/boot_id': BOOT_ID }),
    });
    expect(path).toBe('/run/user/1000/running-process/broker/rpb-v1-ea6cfc821a2925dc-shared.sock');
  });

  it('refuses a path of 108 bytes or more, and takes 107', async () => {
    const read = files({ '/etc/machine-id': MACHINE_ID });
    // The part after the runtime dir is fixed: "/running-process/broker/rpb-v1-<16>-shared.sock".
    const tail = '/running-process/broker/rpb-v1-9bfab56ad37b16cc-shared.sock'.length;
    const runtime = (n: number) => `/${'r'.repeat(n - tail - 1)}`;
    const ok = await rpSharedBrokerPath({
      env: { XDG_RUNTIME_DIR: runtime(107) },
      uid: 1000,
      readFile: read,
    });
    expect(Buffer.byteLength(ok)).toBe(107);
    const error = await rpSharedBrokerPath({
      env: { XDG_RUNTIME_DIR: runtime(108) },
      uid: 1000,
      readFile: read,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpAddressError);
    expect((error as RpAddressError).code).toBe('PATH_TOO_LONG');
    expect((error as RpAddressError).message).toContain('108 bytes');
  });

  it('creates the directories 0700 and refuses a group-writable one', async () => {
    const dir = tempDir('rp-address');
    cleanups.push(dir.remove);
    const path = dir.path('running-process', 'broker', 'rpb-v1-x-shared.sock');
    await ensureRpBrokerDir(path);
    expect(statSync(dir.path('running-process')).mode & 0o777).toBe(0o700);
    expect(statSync(dir.path('running-process', 'broker')).mode & 0o777).toBe(0o700);
    chmodSync(dir.path('running-process'), 0o770);
    const error = await ensureRpBrokerDir(path).catch((e: unknown) => e);
    expect((error as RpAddressError).code).toBe('UNSAFE_DIRECTORY');
    expect((error as RpAddressError).path).toBe(dir.path('running-process'));
  });

  it('refuses a socket directory that is a symlink', async () => {
    const dir = tempDir('rp-address');
    cleanups.push(dir.remove);
    mkdirSync(dir.path('running-process', 'elsewhere'), { recursive: true, mode: 0o700 });
    symlinkSync('elsewhere', dir.path('running-process', 'broker'));
    const error = await ensureRpBrokerDir(dir.path('running-process', 'broker', 's.sock')).catch(
      (e: unknown) => e,
    );
    expect((error as RpAddressError).code).toBe('UNSAFE_DIRECTORY');
    expect((error as Error).message).toContain('symlink');
  });
});
