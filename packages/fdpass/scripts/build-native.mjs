#!/usr/bin/env node
// Builds build/Release/fdpass.node with node-gyp. Runs as the package's
// install script (so `npm ci` at the root builds the addon) and by hand.
// Uses the headers installed next to the running node when they exist, so a
// machine without network access to nodejs.org still builds.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const packageRoot = join(import.meta.dirname, '..');
const require = createRequire(join(packageRoot, 'package.json'));

function nodeGypScript() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // npm exports the node-gyp it bundles to lifecycle scripts.
    return process.env.npm_config_node_gyp ?? null;
  }
}

function localHeaders() {
  if (process.env.npm_config_nodedir) return null;
  const prefix = dirname(dirname(process.execPath));
  const common = join(prefix, 'include', 'node', 'common.gypi');
  return existsSync(common) ? prefix : null;
}

const script = nodeGypScript();
if (script === null) {
  console.error('@handoff/fdpass: node-gyp not found; cannot build the native addon');
  process.exit(1);
}
const args = [script, 'rebuild'];
const nodedir = localHeaders();
if (nodedir !== null) args.push(`--nodedir=${nodedir}`);
if (process.argv.includes('--debug')) args.push('--debug');
const run = spawnSync(process.execPath, args, { cwd: packageRoot, stdio: 'inherit' });
if (run.status !== 0) {
  console.error('@handoff/fdpass: native build failed (see node-gyp output above)');
}
process.exit(run.status ?? 1);
