// Scaffolding for the prebuild tests: stand-alone copies of the package (as a
// user's node_modules would hold it, without the repository's build/), the
// prebuild script run into a temp dir, and a PATH that holds only chosen tools.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const fdpassRoot = join(import.meta.dirname, '..');
const requireFromPackage = createRequire(join(fdpassRoot, 'package.json'));

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(
      `${what} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

/** Runs scripts/prebuild.mjs into `out`; returns the .node file it wrote. */
export function buildPrebuild(arch: 'x64' | 'arm64', out: string): string {
  const stdout = run(
    process.execPath,
    [join(fdpassRoot, 'scripts', 'prebuild.mjs'), '--arch', arch, '--out', out],
    `prebuild for ${arch}`,
  );
  const file = stdout.trim().split('\n').at(-1) ?? '';
  const expected = join(out, 'prebuilds', `linux-${arch}`, '@handoff+fdpass.glibc.node');
  if (file !== expected) throw new Error(`prebuild wrote ${file}, expected ${expected}`);
  return file;
}

/** Compiles src/ into `out` (a fresh dist, whatever the package's own dist holds). */
export function compileDist(out: string): void {
  const tsc = requireFromPackage.resolve('typescript/bin/tsc');
  run(
    process.execPath,
    [tsc, '-p', join(fdpassRoot, 'tsconfig.build.json'), '--outDir', out],
    'tsc',
  );
}

export interface PackageCopyParts {
  /** A compiled dist/ to copy in. */
  dist?: string;
  /** A directory holding prebuilds/ to copy in. */
  prebuildsFrom?: string;
}

/**
 * Lays out <dir>/node_modules/@handoff/fdpass as a registry install would:
 * the published files, no build/, and its runtime dependencies beside it.
 * Returns the package directory.
 */
export function installCopy(dir: string, parts: PackageCopyParts): string {
  const modules = join(dir, 'node_modules');
  const pkg = join(modules, '@handoff', 'fdpass');
  mkdirSync(join(pkg, 'scripts'), { recursive: true });
  for (const file of ['package.json', 'binding.gyp', 'scripts/build-native.mjs']) {
    cpSync(join(fdpassRoot, file), join(pkg, file));
  }
  cpSync(join(fdpassRoot, 'native'), join(pkg, 'native'), { recursive: true });
  if (parts.dist !== undefined) cpSync(parts.dist, join(pkg, 'dist'), { recursive: true });
  if (parts.prebuildsFrom !== undefined) {
    cpSync(join(parts.prebuildsFrom, 'prebuilds'), join(pkg, 'prebuilds'), { recursive: true });
  }
  for (const dep of ['node-gyp-build', 'node-addon-api']) {
    const real = dirname(requireFromPackage.resolve(`${dep}/package.json`));
    symlinkSync(real, join(modules, dep), 'dir');
  }
  return pkg;
}

/** A bin directory holding `node` and the named tools (symlinks to the real ones), nothing else. */
export function pathWith(dir: string, tools: readonly string[]): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync(process.execPath, join(bin, 'node'));
  for (const tool of tools) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found === '') throw new Error(`${tool} is not installed; the test needs it to exist`);
    // A pyenv shim needs bash on PATH; link the interpreter it resolves to.
    const real =
      tool === 'python3'
        ? run(found, ['-c', 'import sys; print(sys.executable)'], 'python3').trim()
        : realpathSync(found);
    symlinkSync(real, join(bin, tool));
  }
  return bin;
}

/** Every file under `dir`, relative, for asserting what a run left behind. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort();
}

/**
 * A script that loads the copy's dist through the normal entry point, passes
 * an open file across a socketpair and reads it through the received fd, and
 * reports which .node file the process mapped.
 */
export function writeRoundTripScript(dir: string, pkg: string): string {
  const file = join(dir, 'round-trip.mjs');
  writeFileSync(
    file,
    `import { openSync, readFileSync, readSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
const { FdSocket, closeFd } = await import(${JSON.stringify(join(pkg, 'dist', 'index.js'))});
const shared = join(${JSON.stringify(dir)}, 'shared.txt');
writeFileSync(shared, 'through the fd on ' + process.arch);
const [a, b] = FdSocket.pair();
const got = new Promise((resolve) => b.once('message', resolve));
const fd = openSync(shared, 'r');
a.write(Buffer.from('take this'), [fd]);
closeSync(fd);
const message = await got;
const buf = Buffer.alloc(100);
const n = readSync(message.fds[0], buf, 0, buf.length, 0);
for (const received of message.fds) closeFd(received);
a.close();
b.close();
const mapped = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .filter((line) => line.endsWith('.node')).map((line) => line.slice(line.indexOf('/'))))];
console.log(JSON.stringify({ arch: process.arch, data: message.data.toString(),
  fds: message.fds.length, text: buf.subarray(0, n).toString(), mapped }));
`,
  );
  return file;
}

/** Node 20's own floor: a prebuild must load wherever Node 20 runs. */
export const GLIBC_FLOOR = '2.28';

/**
 * The newest GLIBC_x.y symbol version `file` needs, read from its dynamic
 * symbols by `objdump` (the cross one for another architecture's ELF).
 */
export function newestGlibcNeeded(file: string, objdump = 'objdump'): string {
  const out = spawnSync(objdump, ['-T', file], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${objdump} -T ${file}: ${out.stderr}`);
  const versions = [...out.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [
    Number(m[1]),
    Number(m[2]),
  ]);
  versions.sort((a, b) => (a[0]! - b[0]!) * 1000 + (a[1]! - b[1]!));
  const newest = versions.at(-1);
  return newest === undefined ? 'none' : `${newest[0]}.${newest[1]}`;
}
