#!/usr/bin/env node
// The package's install script, and the by-hand build of the addon.
//
//   node scripts/build-native.mjs                install: use the prebuild for this
//                                                platform/arch/libc when it loads,
//                                                otherwise build from source
//   node scripts/build-native.mjs --from-source  always build (npm run build:native)
//   … --debug                                    build/Debug instead of build/Release
//
// A source build runs node-gyp against the headers installed next to the
// running node when they exist, so a machine without access to nodejs.org
// still builds. Before node-gyp runs, the tools it needs are checked, so a
// machine without them gets one message naming what to install rather than a
// node-gyp stack trace.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, relative } from 'node:path';

const packageRoot = join(import.meta.dirname, '..');
const require = createRequire(join(packageRoot, 'package.json'));
const tag = '@handoff/fdpass';

const fromSource =
  process.argv.includes('--from-source') ||
  process.env.FDPASS_BUILD_FROM_SOURCE === '1' ||
  process.env.npm_config_build_from_source === 'true';
const debug = process.argv.includes('--debug');
// By hand, node-gyp's output (compiler warnings included) is the point; as an
// install script it is noise unless the build fails.
const showBuildOutput =
  process.argv.includes('--from-source') || process.argv.includes('--verbose');

const libc =
  process.platform !== 'linux' ? '' : existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
const target = `${process.platform}-${process.arch}${libc ? ` (${libc})` : ''}`;

/**
 * The prebuild node-gyp-build would pick for this runtime, or null. Same
 * rules as the loader (src/native-loader.ts), which cannot be imported here:
 * dist/ does not exist yet when the repository's own install runs.
 */
function matchingPrebuild() {
  let gypBuild;
  try {
    gypBuild = require('node-gyp-build');
  } catch {
    return null;
  }
  const prebuilds = join(packageRoot, 'prebuilds');
  const tuple = readdirOr(prebuilds)
    .map(gypBuild.parseTuple)
    .filter(gypBuild.matchTuple(process.platform, process.arch))
    .sort(gypBuild.compareTuples)[0];
  if (tuple === undefined) return null;
  const dir = join(prebuilds, tuple.name);
  const winner = readdirOr(dir)
    .map(gypBuild.parseTags)
    .filter(gypBuild.matchTags('node', process.versions.modules))
    .sort(gypBuild.compareTags('node'))[0];
  return winner === undefined ? null : join(dir, winner.file);
}

function readdirOr(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function onPath(command) {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** The tools a source build needs that are not on PATH, by their usual names. */
function missingTools() {
  const missing = [];
  const cxx = process.env.CXX;
  const hasCompiler = cxx ? onPath(cxx) || existsSync(cxx) : onPath('g++') || onPath('c++');
  if (!hasCompiler) missing.push(cxx ? `${cxx} (from $CXX)` : 'g++');
  if (!onPath('make')) missing.push('make');
  const python = process.env.npm_config_python ?? process.env.PYTHON;
  if (!(python ? onPath(python) || existsSync(python) : onPath('python3'))) {
    missing.push(
      python
        ? `${python} (from ${process.env.npm_config_python ? 'npm_config_python' : '$PYTHON'})`
        : 'python3',
    );
  }
  return missing;
}

function explainAndExit(problem, { hint, buildFailed = false } = {}) {
  const why = fromSource
    ? 'Building the addon from source needs'
    : `There is no prebuilt addon for ${target} that loads, so it is built from source, which needs`;
  console.error(
    [
      '',
      `${tag}: ${problem}`,
      `${why} a C++17 compiler (g++), make and python3.`,
      ...(hint ? [hint] : []),
      buildFailed
        ? 'Check that they are installed and work, then run "npm rebuild @handoff/fdpass":'
        : 'Install them, then run "npm rebuild @handoff/fdpass":',
      '  Debian/Ubuntu: sudo apt-get install g++ make python3',
      '  Fedora:        sudo dnf install gcc-c++ make python3',
      '  Alpine:        apk add g++ make python3',
    ].join('\n'),
  );
  process.exit(1);
}

/** How to run node-gyp: [command, ...leading args], or null. */
function nodeGypCommand() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    // Not a dependency: npm hands its bundled node-gyp to lifecycle scripts;
    // other package managers put one on PATH.
    if (process.env.npm_config_node_gyp) return [process.execPath, process.env.npm_config_node_gyp];
    return onPath('node-gyp') ? ['node-gyp'] : null;
  }
}

function localHeaders() {
  if (process.env.npm_config_nodedir) return null;
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? prefix : null;
}

if (!fromSource) {
  const prebuild = matchingPrebuild();
  if (prebuild !== null) {
    try {
      require(prebuild);
      console.log(`${tag}: using the prebuilt addon ${relative(packageRoot, prebuild)}`);
      process.exit(0);
    } catch (err) {
      console.log(
        `${tag}: the prebuilt addon ${relative(packageRoot, prebuild)} does not load here ` +
          `(${err.message.split('\n')[0]}); building from source`,
      );
    }
  }
}

const missing = missingTools();
if (missing.length > 0) {
  explainAndExit(`cannot build the native addon: missing ${missing.join(', ')}.`);
}

const nodeGyp = nodeGypCommand();
if (nodeGyp === null) {
  explainAndExit(
    'cannot build the native addon: node-gyp was not found (run the install through npm).',
  );
}
const [command, ...args] = [...nodeGyp, 'rebuild'];
const nodedir = localHeaders();
if (nodedir !== null) args.push(`--nodedir=${nodedir}`);
if (debug) args.push('--debug');
const noise =
  /^gyp (info|verb|sill|http) |^gyp ERR! (stack +at |System |command |cwd |node -v |node-gyp -v |not ok)/;
const run = spawnSync(command, args, {
  cwd: packageRoot,
  stdio: showBuildOutput ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
});
if (run.status !== 0) {
  if (!showBuildOutput) {
    // The compiler's error and node-gyp's reason, without node-gyp's progress
    // lines and stack frames; the advice follows them.
    const output = `${run.stdout ?? ''}${run.stderr ?? ''}`
      .split('\n')
      .filter((line) => line.trim() !== '' && !noise.test(line));
    console.error(output.slice(-40).join('\n'));
  }
  const how = run.error ? run.error.message : `exited with ${run.status ?? run.signal}`;
  explainAndExit(
    `building the native addon failed (node-gyp ${how}; the end of its output is above).`,
    {
      buildFailed: true,
      hint:
        nodedir === null && !process.env.npm_config_nodedir
          ? "node-gyp also downloads Node's headers from nodejs.org unless they are installed next to node."
          : undefined,
    },
  );
}
