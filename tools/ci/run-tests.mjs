#!/usr/bin/env node
// Runs every workspace test in one vitest invocation and closes with the
// plain summary line CI reads ("tests: N passed, N failed, N skipped").
// Exits with vitest's status, and non-zero when no test ran at all.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const report = join(root, '.vitest-report.json');
rmSync(report, { force: true });
const args = [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
];
const run = spawnSync('npx', args, { cwd: root, stdio: 'inherit' });
let status = run.status ?? 1;
if (!existsSync(report)) {
  console.error('tests: vitest wrote no report');
  process.exit(status || 1);
}
const result = JSON.parse(readFileSync(report, 'utf8'));
const passed = result.numPassedTests ?? 0;
// A file that failed without any failing test (it did not load, or a hook
// threw) counts once; a file whose tests failed is already in numFailedTests.
const brokenFiles = (result.testResults ?? []).filter(
  (file) =>
    file.status === 'failed' &&
    !(file.assertionResults ?? []).some((test) => test.status === 'failed'),
).length;
const failed = (result.numFailedTests ?? 0) + brokenFiles;
const skipped = (result.numPendingTests ?? 0) + (result.numTodoTests ?? 0);
if (passed === 0 && status === 0) status = 1;
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status);
