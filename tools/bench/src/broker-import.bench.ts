// `npm run bench -- broker-import`: what importing @handoff/broker/client
// costs a program that only talks to services, against importing the whole
// @handoff/broker in the same run. Every import is a fresh node process over
// the built dist/ (a module cache would hide the cost), and the order
// alternates between pairs so that noise on the shared machine hits both.
//   time:    median wall time of the import() alone, over 21 processes each
//   modules: files the import loads (ESM hooks + require.cache), one
//            more process each with the recorder preloaded
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { emit, line, percentile, summarize } from './measure.ts';

const run = promisify(execFile);
const here = join(import.meta.dirname, 'broker-import');
const CLIENT = '@handoff/broker/client';
const FULL = '@handoff/broker';
const PROCESSES = 21;

interface ChildResult {
  ms: number;
  cjs: string[];
}

async function importOnce(specifier: string, preload: string[] = [], env = {}) {
  const { stdout } = await run(
    process.execPath,
    [...preload, join(here, 'import-entry.mjs'), specifier],
    { env: { ...process.env, ...env } },
  );
  return JSON.parse(stdout) as ChildResult;
}

async function modulesLoaded(specifier: string, dir: string): Promise<number> {
  const log = join(dir, `${specifier.replaceAll('/', '_')}.log`);
  const { cjs } = await importOnce(specifier, ['--import', join(here, 'load-recorder.mjs')], {
    HANDOFF_LOAD_LOG: log,
  });
  const viaHooks = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const files = new Set([...viaHooks, ...cjs]);
  files.delete(new URL(`file://${join(here, 'import-entry.mjs')}`).href);
  return files.size;
}

export async function brokerImportSuite(): Promise<void> {
  const dist = join(import.meta.dirname, '../../../packages/broker/dist/client/index.js');
  if (!existsSync(dist))
    throw new Error(`${dist} is missing: run \`npm run bench\`, which builds first`);
  console.error(`# broker-import: ${PROCESSES} fresh processes per entry`);
  const times = { client: [] as number[], full: [] as number[] };
  await importOnce(CLIENT); // warm the OS file cache for both
  await importOnce(FULL);
  for (let i = 0; i < PROCESSES; i++) {
    const order = i % 2 === 0 ? (['client', 'full'] as const) : (['full', 'client'] as const);
    for (const which of order)
      times[which].push((await importOnce(which === 'client' ? CLIENT : FULL)).ms);
  }
  const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-import-'));
  let modules: { client: number; full: number };
  try {
    modules = { client: await modulesLoaded(CLIENT, dir), full: await modulesLoaded(FULL, dir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ms = { client: percentile(times.client, 50), full: percentile(times.full, 50) };
  const perSecond = (samples: number[]) => summarize(samples.map((t) => 1000 / t));
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  emit(
    line(
      'broker.import.client_entry',
      perSecond(times.client),
      'broker.import.full_entry',
      perSecond(times.full),
      {
        unit: 'imports_per_s',
        import_ms: Number(ms.client.toFixed(2)),
        baseline_import_ms: Number(ms.full.toFixed(2)),
        time_vs_baseline: ratio(ms.client, ms.full),
        modules: modules.client,
        baseline_modules: modules.full,
        modules_vs_baseline: ratio(modules.client, modules.full),
        processes: PROCESSES,
      },
    ),
  );
}
