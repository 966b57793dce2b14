#!/usr/bin/env node
// Builds the N-API prebuild of the addon for one Linux architecture into
// <out>/prebuilds/<platform>-<arch>/, the layout node-gyp-build resolves at
// run time. Release-time tool; not shipped.
//
//   node scripts/prebuild.mjs                 linux-x64 (the host)
//   node scripts/prebuild.mjs --arch arm64    cross-built with aarch64-linux-gnu-*
//   node scripts/prebuild.mjs --out <dir>     writes <dir>/prebuilds/… instead
//
// Works offline: node-gyp compiles against the headers installed next to the
// running node (nodejs.org is never contacted when they are there). It
// compiles in a scratch copy of binding.gyp + native/, so the package's own
// build/ directory, which the repository's tests load, is never touched and
// two architectures can build at once.
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const packageRoot = join(import.meta.dirname, '..');
const require = createRequire(join(packageRoot, 'package.json'));

// GNU triplets of the Debian cross toolchains (g++-<triplet>).
const crossTriplets = { arm64: 'aarch64-linux-gnu', x64: 'x86_64-linux-gnu' };

function fail(message) {
  console.error(`@handoff/fdpass prebuild: ${message}`);
  process.exit(1);
}

function onPath(command) {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .some((dir) => dir !== '' && existsSync(join(dir, command)));
}

const { values } = parseArgs({
  options: { arch: { type: 'string', default: process.arch }, out: { type: 'string' } },
});
const arch = values.arch;
const out = values.out ?? packageRoot;
if (process.platform !== 'linux')
  fail(`only Linux prebuilds are built here (this is ${process.platform})`);

const env = { ...process.env };
const opts = {
  arch,
  platform: 'linux',
  napi: true,
  strip: true,
  tagLibc: true,
  targets: [process.versions.node],
  name: require('./package.json').name,
  out,
};

if (arch !== process.arch) {
  const triplet = crossTriplets[arch];
  if (triplet === undefined) fail(`no cross toolchain known for arch ${arch}`);
  if (!onPath(`${triplet}-g++`)) {
    fail(
      `cross-building for ${arch} needs ${triplet}-g++ (Debian: apt-get install g++-${triplet})`,
    );
  }
  env.CC = `${triplet}-gcc`;
  env.CXX = `${triplet}-g++`;
  env.LINK = `${triplet}-g++`;
  opts.stripBin = `${triplet}-strip`;
  // Debian's cross compilers target glibc; the host's libc says nothing here.
  opts.libc = 'glibc';
}

// Headers next to the running node, as build-native.mjs uses them. N-API is
// ABI-stable, so the host node's headers serve every architecture.
const prefix = dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'common.gypi'))) env.npm_config_nodedir = prefix;

// binding.gyp asks node for node-addon-api's include dir; from the scratch
// copy (outside the package) it is found through NODE_PATH.
const addonApiModules = dirname(dirname(require.resolve('node-addon-api/package.json')));
env.NODE_PATH = [addonApiModules, env.NODE_PATH].filter(Boolean).join(delimiter);

let nodeGyp;
try {
  nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  nodeGyp = env.npm_config_node_gyp;
}
if (nodeGyp === undefined) fail('node-gyp not found (it is a devDependency of the package)');
opts.nodeGyp = nodeGyp;

const scratch = mkdtempSync(join(tmpdir(), `fdpass-prebuild-${arch}-`));
cpSync(join(packageRoot, 'binding.gyp'), join(scratch, 'binding.gyp'));
cpSync(join(packageRoot, 'native'), join(scratch, 'native'), { recursive: true });
opts.cwd = scratch;
opts.cache = join(scratch, '.node-gyp');

// prebuildify reads its environment when called, so the cross settings go in
// process.env for the duration of the build.
Object.assign(process.env, env);
const prebuildify = require('prebuildify');
prebuildify(opts, (err) => {
  rmSync(scratch, { recursive: true, force: true });
  if (err) fail(err.message);
  const libc = opts.libc ?? (existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
  const file = join(
    out,
    'prebuilds',
    `linux-${arch}`,
    `${opts.name.replace('/', '+')}.${libc}.node`,
  );
  if (!existsSync(file)) fail(`prebuildify finished but ${file} is missing`);
  console.log(file);
});
