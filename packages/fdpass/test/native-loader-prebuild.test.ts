import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FdPassError } from '../src/index.js';
import { candidatePaths, loadFromPaths, prebuildPaths } from '../src/native-loader.js';

const libc = existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
const tag = process.platform === 'linux' ? `.${libc}` : '';
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function packageDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fdpass-loader-'));
  dirs.push(dir);
  return dir;
}

describe('native loader: prebuilds', () => {
  it('without prebuilds/ names the file a matching prebuild would be', () => {
    const root = packageDir();
    expect(prebuildPaths(root)).toEqual([
      join(root, 'prebuilds', `${process.platform}-${process.arch}`, `@handoff+fdpass${tag}.node`),
    ]);
  });

  it("picks by node-gyp-build's rules: this platform-arch, this libc, never another's", () => {
    const root = packageDir();
    const here = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    const elsewhere = join(root, 'prebuilds', `${process.platform}-other`);
    mkdirSync(here, { recursive: true });
    mkdirSync(elsewhere, { recursive: true });
    const other = libc === 'glibc' ? 'musl' : 'glibc';
    for (const file of [`@handoff+fdpass.${other}.node`, 'notes.txt']) {
      writeFileSync(join(here, file), '');
    }
    writeFileSync(join(elsewhere, '@handoff+fdpass.node'), '');
    if (process.platform === 'linux') {
      // Only a build for the other libc: nothing matches.
      expect(prebuildPaths(root)).toEqual([join(here, `@handoff+fdpass.${libc}.node`)]);
    }
    writeFileSync(join(here, `@handoff+fdpass${tag}.node`), '');
    expect(prebuildPaths(root)).toEqual([join(here, `@handoff+fdpass${tag}.node`)]);
  });

  it('looks for a prebuild only after every local build failed', () => {
    let asked = 0;
    const native = loadFromPaths(candidatePaths(), () => {
      asked++;
      return [];
    });
    expect(typeof native.socketPair).toBe('function');
    expect(asked).toBe(0);
  });

  it('the error lists the local builds and the prebuild, with why each failed', () => {
    const root = packageDir();
    const prebuild = join(root, 'prebuilds', 'x', '@handoff+fdpass.node');
    mkdirSync(join(root, 'prebuilds', 'x'), { recursive: true });
    writeFileSync(prebuild, 'not an ELF file');
    let error: unknown;
    try {
      loadFromPaths(candidatePaths(root), () => [prebuild]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FdPassError);
    expect((error as FdPassError).code).toBe('ERR_NATIVE_LOAD');
    const message = (error as Error).message;
    expect(message).toContain(`${join(root, 'build', 'Release', 'fdpass.node')}: not found`);
    expect(message).toContain(`${join(root, 'build', 'Debug', 'fdpass.node')}: not found`);
    expect(message).toMatch(
      new RegExp(`${prebuild.replaceAll('+', '\\+')}: .*(invalid ELF|too short)`),
    );
  });
});
