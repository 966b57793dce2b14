#!/usr/bin/env node
// The build's second half, after tsc: what create-daemon ships from the
// repository as it is now — dist/versions.json (the ranges generated
// projects depend on) and dist/templates/kv (apps/demo-daemon made
// standalone). Both fail the build rather than ship something stale.
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeKvTemplate } from '../dist/kv-template.js';
import { collectVersions, REPO_ROOT } from '../dist/versions.js';

const pkg = join(import.meta.dirname, '..');
const dist = join(pkg, 'dist');

writeFileSync(
  join(dist, 'versions.json'),
  `${JSON.stringify(collectVersions(REPO_ROOT), null, 2)}\n`,
);

const kv = join(dist, 'templates', 'kv');
rmSync(kv, { recursive: true, force: true });
for (const file of makeKvTemplate(
  join(REPO_ROOT, 'apps', 'demo-daemon'),
  join(pkg, 'templates', 'kv-extra'),
)) {
  const path = join(kv, file.path);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, file.content);
  chmodSync(path, file.mode);
}
console.error(`wrote ${join(dist, 'versions.json')} and ${kv}`);
