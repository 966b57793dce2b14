// The prebuild path as a user meets it: a copy of the package laid out as in
// node_modules (no build/), the linux-x64 prebuild made by scripts/prebuild.mjs,
// the loader picking it, and the install script choosing between it and a
// source build on a machine without a compiler.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPrebuild,
  compileDist,
  GLIBC_FLOOR,
  installCopy,
  listFiles,
  newestGlibcNeeded,
  pathWith,
  tempDir,
  writeRoundTripScript,
} from './prebuild-helpers.js';

const onLinuxX64Glibc =
  process.platform === 'linux' && process.arch === 'x64' && !existsSync('/etc/alpine-release');

describe.runIf(onLinuxX64Glibc)('linux-x64 prebuild', () => {
  // One prebuild and one dist for the file: compiling is the slow part.
  let shared = { path: '', remove() {} };
  let dist = '';
  let prebuild = '';
  const perTest: Array<{ remove(): void }> = [];

  beforeAll(() => {
    shared = tempDir('fdpass-prebuilt-');
    prebuild = buildPrebuild('x64', shared.path);
    dist = join(shared.path, 'dist');
    compileDist(dist);
  }, 180_000);
  afterAll(() => shared.remove());
  afterEach(() => {
    for (const dir of perTest.splice(0)) dir.remove();
  });

  function scratch(): string {
    const dir = tempDir('fdpass-user-');
    perTest.push(dir);
    return dir.path;
  }

  function installScript(pkg: string, binDir: string) {
    return spawnSync(process.execPath, [join(pkg, 'scripts', 'build-native.mjs')], {
      cwd: pkg,
      encoding: 'utf8',
      env: { PATH: binDir, HOME: process.env.HOME ?? '/' },
    });
  }

  it('is a stripped N-API build named as node-gyp-build resolves it', () => {
    const file = spawnSync('file', ['-b', prebuild], { encoding: 'utf8' }).stdout;
    expect(file).toMatch(/x86-64/);
    expect(file).toMatch(/, stripped/);
  });

  it('needs no glibc newer than Node 20 does (2.28): newer calls are looked up at run time', () => {
    expect(newestGlibcNeeded(prebuild)).toBe(GLIBC_FLOOR);
  });

  it('the loader uses it when there is no build/, and fds pass through it', () => {
    const dir = scratch();
    const pkg = installCopy(dir, { dist, prebuildsFrom: shared.path });
    const script = writeRoundTripScript(dir, pkg);
    const run = spawnSync(process.execPath, [script], { cwd: dir, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(report).toEqual({
      arch: 'x64',
      data: 'take this',
      fds: 1,
      text: 'through the fd on x64',
      mapped: [join(pkg, 'prebuilds', 'linux-x64', '@handoff+fdpass.glibc.node')],
    });
    expect(existsSync(join(pkg, 'build'))).toBe(false);
  });

  it('without a matching prebuild the load error lists every place it tried', () => {
    const dir = scratch();
    const pkg = installCopy(dir, { dist });
    const run = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { FdSocket } from ${JSON.stringify(join(pkg, 'dist', 'index.js'))};
         try { FdSocket.pair(); } catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`,
      ],
      { encoding: 'utf8' },
    );
    const { code, message } = JSON.parse(run.stdout) as { code: string; message: string };
    expect(code).toBe('ERR_NATIVE_LOAD');
    for (const tried of [
      join(pkg, 'build', 'Release', 'fdpass.node'),
      join(pkg, 'build', 'Debug', 'fdpass.node'),
      join(pkg, 'prebuilds', 'linux-x64', '@handoff+fdpass.glibc.node'),
    ]) {
      expect(message).toContain(`${tried}: not found`);
    }
  });

  it('the install script takes the prebuild without touching a compiler', () => {
    const dir = scratch();
    const pkg = installCopy(dir, { dist, prebuildsFrom: shared.path });
    const before = listFiles(pkg);
    const run = installScript(pkg, pathWith(dir, []));
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(
      '@handoff/fdpass: using the prebuilt addon prebuilds/linux-x64/@handoff+fdpass.glibc.node\n',
    );
    expect(run.status).toBe(0);
    expect(existsSync(join(pkg, 'build'))).toBe(false);
    expect(listFiles(pkg)).toEqual(before);
  });

  it('without a prebuild and without tools it names every missing tool and how to install them', () => {
    const dir = scratch();
    const pkg = installCopy(dir, {});
    const run = installScript(pkg, pathWith(dir, []));
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).not.toMatch(/gyp|Error:|\n {4}at /);
    const lines = run.stderr.trim().split('\n');
    expect(lines[0]).toBe(
      '@handoff/fdpass: cannot build the native addon: missing g++, make, python3.',
    );
    expect(lines).toContain('  Debian/Ubuntu: sudo apt-get install g++ make python3');
    expect(lines).toContain('  Fedora:        sudo dnf install gcc-c++ make python3');
    expect(lines.at(-1)).toBe('  Alpine:        apk add g++ make python3');
    expect(run.stderr).toContain('There is no prebuilt addon for linux-x64 (glibc)');
    expect(existsSync(join(pkg, 'build'))).toBe(false);
  });

  it('names only the tools that are missing', () => {
    const dir = scratch();
    const pkg = installCopy(dir, {});
    const run = installScript(pkg, pathWith(dir, ['make', 'python3']));
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')[0]).toBe(
      '@handoff/fdpass: cannot build the native addon: missing g++.',
    );
    expect(existsSync(join(pkg, 'build'))).toBe(false);
  });

  it('when the compile fails, the advice comes last, after the compiler error', () => {
    const dir = scratch();
    const pkg = installCopy(dir, {});
    // Every tool is there, but the compiler fails: a broken toolchain.
    const broken = join(dir, 'broken-cxx');
    writeFileSync(broken, '#!/bin/sh\necho "broken-cxx: cannot compile $*" >&2\nexit 1\n', {
      mode: 0o755,
    });
    const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
    const run = spawnSync(process.execPath, [join(pkg, 'scripts', 'build-native.mjs')], {
      cwd: pkg,
      encoding: 'utf8',
      env: { ...process.env, CXX: broken, CC: broken, npm_config_node_gyp: nodeGyp },
    });
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split('\n');
    const advice = lines.indexOf(
      '@handoff/fdpass: building the native addon failed (node-gyp exited with 1; the end of its output is above).',
    );
    expect(advice).toBeGreaterThan(0);
    expect(lines.slice(0, advice).join('\n')).toContain('broken-cxx: cannot compile');
    expect(run.stderr).not.toMatch(/^gyp ERR! stack +at /m);
    expect(lines).toContain(
      'Check that they are installed and work, then run "npm rebuild @handoff/fdpass":',
    );
    expect(lines.at(-1)).toBe('  Alpine:        apk add g++ make python3');
  });
});
