// The kv template: apps/demo-daemon made standalone, still under the demo's
// names (create.ts renames it for each project). Made from the repository
// at build time into dist/templates/kv (scripts/build-templates.mjs), so it
// never drifts from the demo daemon; each change it makes is a patch that
// must find its text, so a demo daemon that moved on fails the build
// instead of shipping a half-standalone copy.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CreateDaemonError } from './errors.js';
import { EXCLUDED_DIRS, EXCLUDED_SUFFIXES } from './rename/template.js';

export interface TemplateFile {
  /** Relative, with `/`. */
  readonly path: string;
  readonly content: Buffer;
  readonly mode: number;
}

/** The demo changed in a way the template build cannot make standalone. */
export class KvTemplateError extends CreateDaemonError {
  static override readonly brand: string = '@handoff/create-daemon:KvTemplateError';
  override readonly name = 'KvTemplateError';
  declare readonly code: 'TEMPLATE_DRIFT';
  constructor(message: string, options?: { cause?: unknown }) {
    super('TEMPLATE_DRIFT', message, options);
  }
}

/**
 * Left out: the repository's own campaigns, which reach into other
 * workspaces (shared fuzz corpora and mutators, the issue-12 memory
 * measurements), and the files the standalone project has its own of.
 */
const DROPPED = [
  /^test\/line-protocol\.fuzz\.test\.ts$/,
  /^test\/line-capture\.ts$/,
  /^test\/fixtures\/corpus\//,
  /^test\/issue-12-data-path\.int\.test\.ts$/,
  /^README\.md$/,
  /^package\.json$/,
];

/** Text replacements: [file, find, replace]; every one must match. */
const PATCHES: readonly (readonly [string, string, string])[] = [
  // No workspace sources to resolve to: the published packages' dist is what runs.
  [
    'src/service-definition.ts',
    `      // From source, workspace packages resolve to their TypeScript (the
      // @handoff/source condition) and tsx compiles on the fly.
      ...(fromSource ? ['--conditions=@handoff/source', '--import', 'tsx'] : []),`,
    `      // From source, tsx compiles on the fly.
      ...(fromSource ? ['--import', 'tsx'] : []),`,
  ],
  ['test/service-definition.test.ts', `      '--conditions=@handoff/source',\n`, ''],
  ['test/harness.ts', `['--conditions=@handoff/source', '--import', 'tsx']`, `['--import', 'tsx']`],
  [
    'test/demo-daemon.int.test.ts',
    String.raw`/apps\/demo-daemon\/src\/daemon-main\.ts$/`,
    String.raw`/\/src\/daemon-main\.ts$/`,
  ],
  [
    'test/generated.test.ts',
    'run npm run generate -w @handoff/demo-daemon',
    'run npm run generate',
  ],
  // The demo runs the workspace's private handoff-codegen; a standalone
  // project has its own scripts/generate.mjs (templates/kv-extra) instead.
  [
    'test/generated.test.ts',
    `// \`npm run generate\` is \`handoff-codegen demo_kv_v1 handoff_demo_kv_v1\`, run in the app.
const codegen = join(app, '..', '..', 'node_modules', '.bin', 'handoff-codegen');`,
    `// \`npm run generate\` is \`node scripts/generate.mjs\`.
const generator = join(app, 'scripts', 'generate.mjs');`,
  ],
  [
    'test/generated.test.ts',
    `execFileSync(codegen, ['demo_kv_v1', 'handoff_demo_kv_v1', '--out', out.dir], {`,
    `execFileSync(process.execPath, [generator, '--out', out.dir], {`,
  ],
  [
    'src/index.ts',
    '// Public surface of @handoff/demo-daemon.',
    '// Public surface of this package.',
  ],
];

function listFiles(dir: string, prefix = ''): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) {
      if (!EXCLUDED_DIRS.has(entry.name)) files.push(...listFiles(dir, path));
    } else if (entry.isFile() && !EXCLUDED_SUFFIXES.some((suffix) => entry.name.endsWith(suffix))) {
      files.push(path);
    }
  }
  return files.sort();
}

function read(dir: string, path: string): TemplateFile {
  const file = join(dir, path);
  return { path, content: readFileSync(file), mode: statSync(file).mode & 0o777 };
}

/**
 * The standalone kv template from `demoDir` (apps/demo-daemon) and
 * `extraDir` (templates/kv-extra: files of its own, which replace the
 * demo's of the same path).
 */
export function makeKvTemplate(demoDir: string, extraDir: string): TemplateFile[] {
  const extra = listFiles(extraDir).map((path) => read(extraDir, path));
  const replaced = new Set(extra.map((f) => f.path));
  const files = listFiles(demoDir)
    .filter((path) => !DROPPED.some((pattern) => pattern.test(path)) && !replaced.has(path))
    .map((path) => read(demoDir, path));
  for (const [path, find, replace] of PATCHES) {
    const index = files.findIndex((f) => f.path === path);
    const text = index === -1 ? undefined : files[index]!.content.toString('utf8');
    if (text === undefined || !text.includes(find)) {
      throw new KvTemplateError(
        `apps/demo-daemon/${path} no longer holds ${JSON.stringify(find.slice(0, 60))}: update the patch in packages/create-daemon/src/kv-template.ts`,
      );
    }
    files[index] = { ...files[index]!, content: Buffer.from(text.replace(find, replace)) };
  }
  const leftover = files.find((f) =>
    /@handoff\/source|@handoff\/codegen|@handoff\/testkit|\.\.\/\.\.\/\.\./.test(
      f.content.toString('latin1'),
    ),
  );
  if (leftover) {
    throw new KvTemplateError(
      `apps/demo-daemon/${leftover.path} still reaches outside the project (@handoff/source, @handoff/codegen, @handoff/testkit or ../../..): teach packages/create-daemon/src/kv-template.ts`,
    );
  }
  return [...files, ...extra].sort((a, b) => a.path.localeCompare(b.path));
}

/** A template directory as written by the build (or any directory), file by file. */
export function readTemplateDir(dir: string): TemplateFile[] {
  return listFiles(dir).map((path) => read(dir, path));
}
