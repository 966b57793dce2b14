// Every TypeScript block in the public packages' READMEs (those not marked
// `<!-- fragment -->`, see src/readme-examples.ts) compiles under a strict
// NodeNext project and runs to exit 0 on its own, in a bare environment:
// no XDG_RUNTIME_DIR, no HANDOFF_* variables, a fresh HOME and TMPDIR —
// except HANDOFF_ALLOW_ROOT when the run is root (CI), or every broker an
// example starts would refuse to (a user runs them as themselves).
// The blocks are written inside the repo so `@handoff/*` resolve through
// the workspace's node_modules, to the sources (no build needed).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  collectReadmeExamples,
  exampleFileName,
  parseFencedBlocks,
  README_PACKAGES,
  type ReadmeExample,
  readmeExamples,
} from '../src/readme-examples.ts';

const repoRoot = resolve(import.meta.dirname, '../../..');
const workRoot = join(import.meta.dirname, '..', '.readme-examples');
const examples = collectReadmeExamples(repoRoot);
const RUN_TIMEOUT_MS = 60_000;
/** How long an example's processes may take to be gone after it exited (a daemon handling SIGTERM). */
const EXIT_GRACE_MS = 5_000;
/** Where the packages' path helpers fall back to without XDG_RUNTIME_DIR; examples use it. */
const sharedRuntimeDir = `/tmp/handoff-${process.getuid!()}`;

// Environment an example must not depend on: it runs as a user's first try would.
const SCRUBBED = /^(HANDOFF_|XDG_RUNTIME_DIR$|XDG_CONFIG_HOME$|NODE_OPTIONS$|VITEST|TMPDIR$|HOME$)/;

/** Marks every process an example starts (spawned daemons inherit it), to find leftovers. */
const MARKER = 'README_EXAMPLE_RUN';

let dir = '';
/** tsc's diagnostics by example file; `general` for those in no example (a package's source). */
const diagnostics = new Map<string, string[]>();
let runtimeDirWasThere = true;

function exec(file: string, args: string[], cwd: string): Promise<string> {
  return new Promise((done) => {
    execFile(file, args, { cwd, maxBuffer: 16 * 1024 * 1024 }, (_error, stdout, stderr) =>
      done(`${stdout}${stderr}`),
    );
  });
}

beforeAll(async () => {
  runtimeDirWasThere = existsSync(sharedRuntimeDir);
  mkdirSync(workRoot, { recursive: true });
  dir = mkdtempSync(join(workRoot, 'run-'));
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ type: 'module', private: true })}\n`,
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2023'],
          types: ['node'],
          customConditions: ['@handoff/source'],
          noEmit: true,
          skipLibCheck: true,
        },
        include: ['*.ts'],
      },
      null,
      2,
    )}\n`,
  );
  for (const example of examples) {
    // `export {}` makes even an import-free block a module, so top-level
    // await works and blocks do not share a global scope.
    writeFileSync(join(dir, exampleFileName(example)), `${example.code}export {};\n`);
  }
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const out = await exec(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], dir);
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const at = /^([^(]+)\((\d+),(\d+)\): (.*)$/.exec(line);
    const file = at && !at[1]!.includes('/') ? at[1]! : 'general';
    const message = at ? `line ${at[2]}:${at[3]} of the block: ${at[4]}` : line;
    diagnostics.set(file, [...(diagnostics.get(file) ?? []), message]);
  }
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (existsSync(workRoot) && readdirSync(workRoot).length === 0)
    rmSync(workRoot, { recursive: true });
  // The examples use the packages' defaults, which without XDG_RUNTIME_DIR
  // are under /tmp/handoff-<uid>: take it away again if we made it.
  if (!runtimeDirWasThere) rmSync(sharedRuntimeDir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
}

function runExample(file: string, home: string, runId: string): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!SCRUBBED.test(key)) env[key] = value;
  Object.assign(env, { HOME: home, TMPDIR: home, [MARKER]: runId });
  if (process.getuid?.() === 0) env.HANDOFF_ALLOW_ROOT = '1';
  return new Promise((done) => {
    const child: ChildProcess = spawn(
      process.execPath,
      ['--conditions=@handoff/source', '--import', 'tsx', file],
      // cwd is the examples' directory (tsx resolves from it); an example
      // that writes relative to cwd is caught by the listing after the run.
      { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-16_384);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    }, RUN_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, timedOut, output });
    });
  });
}

/** Pids of live processes carrying this run's marker (a daemon the example left running). */
function markedProcesses(runId: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
      if (environ.split('\0').includes(`${MARKER}=${runId}`)) found.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

async function leftovers(runId: string): Promise<number[]> {
  const deadline = Date.now() + EXIT_GRACE_MS;
  let pids = markedProcesses(runId);
  while (pids.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    pids = markedProcesses(runId);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  return pids;
}

describe('README examples', () => {
  for (const [dirName, pkg] of Object.entries(README_PACKAGES)) {
    it(`${pkg} README has a runnable first example`, () => {
      const blocks = parseFencedBlocks(
        readFileSync(join(repoRoot, 'packages', dirName, 'README.md'), 'utf8'),
      ).filter((b) => b.lang === 'ts' || b.lang === 'typescript');
      expect(blocks.length, `${pkg}: no ts block`).toBeGreaterThan(0);
      expect(blocks[0]!.fragment, `${pkg}: its first example is marked as a fragment`).toBe(false);
    });
  }

  it('type-checks with no error outside the examples', () => {
    expect(diagnostics.get('general') ?? []).toEqual([]);
  });

  for (const example of examples) {
    it(`${example.pkg} README block at line ${example.line}`, async () => {
      const file = exampleFileName(example);
      expect(diagnostics.get(file) ?? [], `tsc, README line ${example.line} is the fence`).toEqual(
        [],
      );
      const home = mkdtempSync(join(tmpdir(), 'readme-example-home-'));
      const runId = `${file}-${process.pid}-${Date.now()}`;
      try {
        const before = readdirSync(dir).sort();
        const run = await runExample(file, home, runId);
        const left = await leftovers(runId);
        expect(
          { code: run.code, signal: run.signal, timedOut: run.timedOut },
          `${example.pkg} README line ${example.line}; output:\n${run.output}`,
        ).toEqual({ code: 0, signal: null, timedOut: false });
        expect(left, 'processes the example left running (killed now)').toEqual([]);
        expect(readdirSync(dir).sort(), 'files created in the working directory').toEqual(before);
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    });
  }
});

describe('the README extractor', () => {
  it('finds ts blocks with the line of their fence and skips marked fragments', () => {
    const markdown = [
      '# x', //                   1
      '```ts', //                 2
      "console.log('a');", //     3
      '```', //                   4
      '<!-- fragment: signatures -->', // 5
      '```ts', //                 6
      'declare const b: 1;', //   7
      '```', //                   8
      '```sh', //                 9
      'npm i', //                 10
      '```', //                   11
      '````typescript', //        12
      '```', //                   13
      'const c = 1;', //          14
      '````', //                  15
    ].join('\n');
    expect(readmeExamples('@handoff/x', markdown)).toEqual([
      { pkg: '@handoff/x', line: 2, code: "console.log('a');\n" },
      { pkg: '@handoff/x', line: 12, code: '```\nconst c = 1;\n' },
    ]);
  });

  it('gives each example of the repo its own file name', () => {
    const names = examples.map((e: ReadmeExample) => exampleFileName(e));
    expect(new Set(names).size).toBe(names.length);
  });
});
