// @handoff/broker/client must stay light: a program that only connects to
// services should not pay for the broker server, pino or the fdpass addon.
// Each case imports an entry in a fresh node process that records every
// module it loads three ways — an ESM load hook (every URL, CommonJS
// reached through import included), require.cache (CommonJS reached
// through require) and process.dlopen (native addons) — then checks the
// record. Importing the full entry must show those modules, so the
// recorder is known to see them.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir, tsxArgs } from './harness.js';

const run = promisify(execFile);
const packageRoot = join(import.meta.dirname, '..');
const built = existsSync(join(packageRoot, 'dist', 'client', 'index.js'));
const tmp = tempDir('client-entry');
afterAll(() => tmp.remove());

// Runs off the main thread (module.register); appends synchronously, so
// a module's line is written before the module is evaluated.
const hooks = `
import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function load(url, context, nextLoad) {
  appendFileSync(log, url + '\\n');
  return nextLoad(url, context);
}`;

const recorder = `
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
const log = process.env.HANDOFF_LOAD_LOG;
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}), import.meta.url, { data: { log } });
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  appendFileSync(log, 'dlopen:' + filename + '\\n');
  return dlopen.call(this, module, filename, ...rest);
};`;

// The importer prints require.cache's keys after the import has settled.
const importer = `
import { createRequire } from 'node:module';
const entry = await import(process.env.HANDOFF_ENTRY);
const cache = Object.keys(createRequire(process.cwd() + '/').cache);
process.stdout.write(JSON.stringify({ exports: Object.keys(entry).sort(), cache }));`;

interface Loaded {
  exports: string[];
  modules: string[];
}

let runs = 0;
async function importInFreshProcess(entry: string, fromSource: boolean): Promise<Loaded> {
  const log = tmp.path(`loads-${runs++}.txt`);
  const recorderUrl = `data:text/javascript,${encodeURIComponent(recorder)}`;
  const { stdout } = await run(
    process.execPath,
    [
      ...(fromSource ? tsxArgs : []),
      '--import',
      recorderUrl,
      '--input-type=module',
      '--eval',
      importer,
    ],
    {
      cwd: packageRoot,
      env: { ...process.env, HANDOFF_LOAD_LOG: log, HANDOFF_ENTRY: entry },
      timeout: 60_000,
    },
  );
  const { exports, cache } = JSON.parse(stdout) as { exports: string[]; cache: string[] };
  const hooked = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  return { exports, modules: [...hooked, ...cache] };
}

const heavy: Record<string, RegExp> = {
  'broker-server': /\/broker\/(src|dist)\/broker-server\.[jt]s$/,
  'hello-router': /\/broker\/(src|dist)\/hello-router\.[jt]s$/,
  pino: /\/node_modules\/pino\//,
  fdpass: /\/(packages\/fdpass|@handoff\/fdpass)\//,
  'a native addon': /^dlopen:|\.node$/,
};

function heavyLoaded(modules: string[]): string[] {
  return Object.entries(heavy)
    .filter(([, pattern]) => modules.some((m) => pattern.test(m)))
    .map(([name]) => name);
}

const clientExports = [
  'AdminClientError',
  'BrokerError',
  'ConnectServiceError',
  'ENDPOINT_CACHE_ENV',
  'adminRequest',
  'clearEndpointCache',
  'connectService',
  'defaultBrokerSocketPath',
];

describe.each([
  { mode: 'source', fromSource: true, skip: false },
  { mode: 'dist', fromSource: false, skip: !built },
])('@handoff/broker/client from $mode', ({ fromSource, skip }) => {
  it.skipIf(skip)('loads neither the server, pino nor fdpass', async () => {
    const client = await importInFreshProcess('@handoff/broker/client', fromSource);
    expect(client.exports).toEqual(clientExports);
    expect(client.modules.some((m) => /\/broker\/(src|dist)\/client\/index\.[jt]s$/.test(m))).toBe(
      true,
    );
    expect(heavyLoaded(client.modules)).toEqual([]);
  });

  it.skipIf(skip)('is seen to load them through the full entry', async () => {
    const full = await importInFreshProcess('@handoff/broker', fromSource);
    expect(full.exports).toEqual(expect.arrayContaining(clientExports));
    expect(heavyLoaded(full.modules)).toEqual(
      expect.arrayContaining(['broker-server', 'hello-router', 'pino', 'fdpass']),
    );
  });
});
