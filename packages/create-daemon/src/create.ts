// Generating a standalone project: decides the names, the protocol id and
// every file (planProject, no writes), then writes them into a directory
// that must be new or empty (createProject). A failure removes what this
// run wrote and leaves the directory as it found it.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { CreateDaemonError } from './errors.js';
import {
  type KvTemplateError,
  makeKvTemplate,
  readTemplateDir,
  type TemplateFile,
} from './kv-template.js';
import { type NameForms, nameForms, nameProblem } from './rename/names.js';
import { deriveProtocolId, formatProtocolId } from './rename/protocol-id.js';
import {
  createRewritePlan,
  DEMO_DAEMON_SOURCE,
  identifierClashes,
  leftovers,
  rewritePath,
  rewriteText,
} from './rename/rewrite.js';
import { GENERATED_DIR } from './rename/template.js';
import { loadVersions, REPO_ROOT, type Versions } from './versions.js';

export const TEMPLATES = ['minimal', 'kv'] as const;
export type TemplateName = (typeof TEMPLATES)[number];

export type CreateErrorCode =
  /** Usage errors (exit 2). */
  | 'BAD_NAME'
  | 'BAD_TEMPLATE'
  /** Refusals (exit 1). */
  | 'TARGET_NOT_EMPTY'
  | 'TARGET_NOT_DIRECTORY'
  | 'NAME_CLASH'
  /** Failures (exit 1). */
  | 'TEMPLATE'
  | 'WRITE_FAILED';

export class CreateError extends CreateDaemonError {
  static override readonly brand: string = '@handoff/create-daemon:CreateError';
  override readonly name = 'CreateError';
  declare readonly code: CreateErrorCode;
  constructor(code: CreateErrorCode, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
  get isUsageError(): boolean {
    return this.code === 'BAD_NAME' || this.code === 'BAD_TEMPLATE';
  }
}

export interface CreateOptions {
  /** Where the project goes: a new or empty directory; relative to `cwd`. */
  readonly target: string;
  readonly cwd?: string | undefined;
  readonly template?: TemplateName | undefined;
  /** The service name; default: the directory's name without a trailing "-daemon". */
  readonly name?: string | undefined;
  /** Default: the versions this package was built with. */
  readonly versions?: Versions | undefined;
}

export interface PlannedFile {
  /** Relative to the project, with `/`. */
  readonly path: string;
  readonly content: Buffer | string;
  readonly mode: number;
}

export interface ProjectPlan {
  readonly dir: string;
  readonly template: TemplateName;
  /** The service name, in every spelling. */
  readonly forms: NameForms;
  readonly packageName: string;
  readonly protocolId: number;
  /** The kv template's executables; none for minimal. */
  readonly executables: { readonly client: string; readonly daemon: string } | undefined;
  readonly files: readonly PlannedFile[];
}

const PACKAGE_ROOT = join(import.meta.dirname, '..');
const MINIMAL_DIR = join(PACKAGE_ROOT, 'templates', 'minimal');
const KV_EXTRA_DIR = join(PACKAGE_ROOT, 'templates', 'kv-extra');
/** Written by the build; absent when this runs from its sources. */
const KV_BUILT_DIR = join(import.meta.dirname, 'templates', 'kv');

/** npm keeps no file named .gitignore in a tarball: templates carry it as _gitignore. */
const renamedOnWrite = (path: string) => (path === '_gitignore' ? '.gitignore' : path);

/** A directory name npm takes as a package name as it is; else the service name is. */
const NPM_NAME = /^[a-z0-9][a-z0-9._-]{0,213}$/;

export const ENGINES = '^20.19.0 || >=22.12.0';

/** The service name for a directory: `my-daemon` serves `my` (its daemon is my-daemon). */
export function defaultName(dir: string): string {
  const base = basename(dir);
  return base.endsWith('-daemon') && base.length > '-daemon'.length
    ? base.slice(0, -'-daemon'.length)
    : base;
}

function pick(versions: Versions, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...names].sort()) {
    const range = versions[name];
    if (range === undefined) throw new CreateError('TEMPLATE', `no version known for ${name}`);
    out[name] = range;
  }
  return out;
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

function minimalFiles(forms: NameForms, packageName: string, id: number, versions: Versions) {
  const files: PlannedFile[] = readTemplateDir(MINIMAL_DIR).map((file) => {
    if (file.path !== 'README.md') return file;
    const text = file.content
      .toString('utf8')
      .replaceAll('{{package}}', packageName)
      .replaceAll('{{name}}', forms.kebab)
      .replaceAll('{{protocolId}}', formatProtocolId(id));
    return { ...file, content: text };
  });
  files.push({
    path: 'src/service.ts',
    mode: 0o644,
    content: `// Who this daemon is to clients and to a broker: its service name, the
// version clients ask for, and its payload protocol — a private-use id
// (0xF001–0xFFFF) derived from the name by create-daemon. Any other
// private-use id works too, as long as no two of your daemons share one.
import { definePayloadProtocol } from '@handoff/protocol';

export const SERVICE_NAME = '${forms.kebab}';
/** Clients ask the broker for this version; bump it when the payloads change. */
export const SERVICE_VERSION = '1.0.0';
export const PAYLOAD_PROTOCOL = definePayloadProtocol(SERVICE_NAME, ${formatProtocolId(id)});
`,
  });
  files.push({
    path: 'package.json',
    mode: 0o644,
    content: json({
      name: packageName,
      version: '0.1.0',
      private: true,
      description: `The ${forms.kebab} daemon, on handoff: framed requests, identity probes, broker handoff.`,
      type: 'module',
      engines: { node: ENGINES },
      scripts: {
        start: 'tsx src/serve.ts',
        client: 'tsx src/cli.ts',
        test: 'vitest run',
        typecheck: 'tsc -p tsconfig.json',
      },
      dependencies: pick(versions, [
        '@handoff/backend-sdk',
        '@handoff/broker',
        '@handoff/protocol',
        'pino',
      ]),
      devDependencies: pick(versions, ['@types/node', 'tsx', 'typescript', 'vitest']),
    }),
  });
  return files;
}

function kvSource(): TemplateFile[] {
  if (existsSync(KV_BUILT_DIR)) return readTemplateDir(KV_BUILT_DIR);
  // From its sources (the tests): what the build would write.
  try {
    return makeKvTemplate(join(REPO_ROOT, 'apps', 'demo-daemon'), KV_EXTRA_DIR);
  } catch (error) {
    throw new CreateError('TEMPLATE', (error as KvTemplateError).message, error);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
function asText(bytes: Buffer): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function kvFiles(forms: NameForms, packageName: string, id: number, versions: Versions) {
  const plan = createRewritePlan(DEMO_DAEMON_SOURCE, { forms, protocolId: id });
  const sources = kvSource().map((file) => ({ ...file, text: asText(file.content) }));
  const missed = sources.flatMap(({ path, text }) => [
    ...leftovers(path, plan).map((l) => `${path} (its name): ${l.text}`),
    ...(text === undefined ? [] : leftovers(text, plan).map((l) => `${path}:${l.line}: ${l.text}`)),
  ]);
  if (missed.length > 0) {
    throw new CreateError(
      'TEMPLATE',
      `the kv template spells the demo's name in a way create-daemon does not rewrite:\n  ${missed.slice(0, 12).join('\n  ')}`,
    );
  }
  const code = sources.flatMap(({ path, text }) =>
    /\.(?:[cm]?ts|[cm]?js)$/.test(path) && !path.startsWith(`${GENERATED_DIR}/`) && text
      ? [{ path, text }]
      : [],
  );
  const clashes = identifierClashes(code, plan);
  if (clashes.length > 0) {
    const shown = clashes.slice(0, 3).map((c) => `${c.from} into ${c.to} (${c.file})`);
    throw new CreateError(
      'NAME_CLASH',
      `the name ${JSON.stringify(forms.kebab)} would turn ${shown.join(', ')}, which the kv template already uses for something else; pick another with --name`,
    );
  }
  const files: PlannedFile[] = sources.map(({ path, content, text, mode }) => ({
    path: rewritePath(path, plan),
    content: text === undefined ? content : rewriteText(text, plan),
    mode,
  }));
  const client = forms.kebab;
  const daemon = `${forms.kebab}-daemon`;
  files.push({
    path: 'package.json',
    mode: 0o644,
    content: json({
      name: packageName,
      version: '0.1.0',
      private: true,
      description: `The ${forms.kebab} daemon and its client: an in-memory key-value cache on handoff (line wire and framed protobuf requests, identity probes, broker handoff) until you make it yours.`,
      type: 'module',
      engines: { node: ENGINES },
      main: './dist/index.js',
      types: './dist/index.d.ts',
      bin: { [client]: './dist/cli/main.js', [daemon]: './dist/daemon-main.js' },
      scripts: {
        build: 'tsc -p tsconfig.build.json && node scripts/copy-generated.mjs',
        start: 'tsx src/serve.ts',
        client: 'tsx src/cli/main.ts',
        generate: 'node scripts/generate.mjs',
        test: 'vitest run',
        typecheck: 'tsc -p tsconfig.json',
      },
      dependencies: pick(versions, [
        '@handoff/backend-sdk',
        '@handoff/broker',
        '@handoff/protocol',
        'pino',
        'protobufjs',
      ]),
      devDependencies: pick(versions, [
        '@types/node',
        'fast-check',
        'protobufjs-cli',
        'tsx',
        'typescript',
        'vitest',
      ]),
    }),
  });
  files.push({
    path: 'README.md',
    mode: 0o644,
    content: kvReadme(forms, packageName, id),
  });
  return files;
}

function kvReadme(forms: NameForms, packageName: string, id: number): string {
  return `# ${packageName}

The \`${forms.kebab}\` daemon and \`${forms.kebab}\`, its client: an in-memory key-value
cache built on [handoff](https://github.com/handoff-dev/handoff), generated by
\`npm create @handoff/daemon -- --template kv\` from handoff's example daemon.
One Unix socket serves a line wire (\`GET key\`, \`SET key value\`) and framed
protobuf requests (payload protocol ${formatProtocolId(id)}, proto package
\`handoff.${forms.snake}.v1\`); it answers identity probes, and a broker starts it
on demand and hands client connections over to it.

\`\`\`sh
npm install
npm test          # unit and integration tests (real brokers and daemons)
npm start         # a broker with this daemon registered; prints its socket
npm run client -- set greeting hello --socket <the printed socket>
npm run client -- get greeting --socket <the printed socket>
npm run build     # dist/, with the ${forms.kebab} and ${forms.kebab}-daemon executables
\`\`\`

Make it yours: replace \`src/kv-store.ts\` and \`src/kv-service.ts\`, edit
\`proto/${forms.snake}_v1.proto\`, then \`npm run generate\` (protobufjs-cli; the
output in \`src/generated/\` is committed, and \`test/generated.test.ts\` fails
when it is stale).

| file | what it owns |
| --- | --- |
| \`src/daemon.ts\` | the wiring: identity, both wires on one socket, the broker attachment, idle timeout, graceful close |
| \`src/daemon-main.ts\` | the \`${forms.kebab}-daemon\` process: flags, environment, signals |
| \`src/service-definition.ts\` | what a broker needs to start the daemon |
| \`src/serve.ts\` | \`npm start\`: a broker in a private temp directory |
| \`src/kv-protocol.ts\`, \`proto/\` | the framed payloads |
| \`src/line-protocol.ts\`, \`src/line-connection.ts\` | the line wire |
| \`src/fd-handover.ts\`, \`src/kv-snapshot.ts\`, \`src/line-cutover.ts\`, \`src/takeover-rehearsal.ts\` | restarts: the store's contents and the line clients left with the broker, the live cut-over of those clients to the next daemon, and its rehearsal at boot |
| \`src/client.ts\`, \`src/cli/\` | the client library and \`${forms.kebab}\` |
`;
}

/** Every file and name, nothing written; throws CreateError. */
export function planProject(options: CreateOptions): ProjectPlan {
  const template = options.template ?? 'minimal';
  if (!TEMPLATES.includes(template)) {
    throw new CreateError(
      'BAD_TEMPLATE',
      `unknown template ${JSON.stringify(template)}; one of: ${TEMPLATES.join(', ')}`,
    );
  }
  const dir = resolve(options.cwd ?? process.cwd(), options.target);
  const name = options.name ?? defaultName(dir);
  const problem = nameProblem(name);
  if (problem !== undefined) {
    throw new CreateError(
      'BAD_NAME',
      `${problem}${options.name === undefined ? ` (the service name comes from the directory's name; give one with --name)` : ''}`,
    );
  }
  const forms = nameForms(name);
  const base = basename(dir);
  const packageName = NPM_NAME.test(base) ? base : forms.kebab;
  const protocolId = deriveProtocolId(name);
  const versions = options.versions ?? loadVersions();
  const files = (template === 'kv' ? kvFiles : minimalFiles)(
    forms,
    packageName,
    protocolId,
    versions,
  ).map((f) => ({ ...f, path: renamedOnWrite(f.path) }));
  for (const file of files) {
    const full = resolve(dir, file.path);
    if (full === dir || !full.startsWith(dir + sep) || relative(dir, full).startsWith('..')) {
      throw new CreateError('TEMPLATE', `${file.path} would be written outside the project`);
    }
  }
  return {
    dir,
    template,
    forms,
    packageName,
    protocolId,
    executables:
      template === 'kv' ? { client: forms.kebab, daemon: `${forms.kebab}-daemon` } : undefined,
    files: files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}

/** Refuses anything but a missing path or an empty directory. */
function checkTarget(dir: string): 'missing' | 'empty' {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new CreateError('WRITE_FAILED', `cannot look at ${dir}: ${(error as Error).message}`);
  }
  if (!stat.isDirectory()) {
    throw new CreateError('TARGET_NOT_DIRECTORY', `${dir} exists and is not a directory`);
  }
  const entries = readdirSync(dir);
  if (entries.length > 0) {
    const shown = entries.slice(0, 5).join(', ');
    throw new CreateError(
      'TARGET_NOT_EMPTY',
      `${dir} is not empty (${shown}${entries.length > 5 ? ', …' : ''}); give a new or empty directory`,
    );
  }
  return 'empty';
}

/** Plans, then writes the project; returns the plan. */
export function createProject(options: CreateOptions): ProjectPlan {
  const plan = planProject(options);
  const state = checkTarget(plan.dir);
  const written = new Set<string>();
  try {
    mkdirSync(plan.dir, { recursive: true });
    for (const file of plan.files) {
      const path = join(plan.dir, file.path);
      written.add(file.path.split('/')[0]!);
      mkdirSync(dirname(path), { recursive: true });
      // wx: never through a file (or symlink) that appeared meanwhile.
      writeFileSync(path, file.content, { flag: 'wx', mode: file.mode });
    }
  } catch (error) {
    // Put the directory back as it was: gone, or empty of what we wrote.
    if (state === 'missing') rmSync(plan.dir, { recursive: true, force: true });
    for (const entry of written) rmSync(join(plan.dir, entry), { recursive: true, force: true });
    throw new CreateError(
      'WRITE_FAILED',
      `writing ${plan.dir} failed (${(error as Error).message}); nothing was left behind`,
      error,
    );
  }
  return plan;
}
