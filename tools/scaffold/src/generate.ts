// Generating apps/<name> from the template on disk: checks the name and the
// protocol id against the workspace, rewrites every template file into a
// staging directory beside apps/<name>, regenerates the protobuf code and
// formats there, and only then moves the whole directory into place — an
// existing apps/<name> is never touched, and a failure leaves nothing
// behind. The decisions are the sans-io modules'; this file does the I/O.
import { execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  createRewritePlan,
  DEMO_DAEMON_SOURCE,
  EXCLUDED_DIRS,
  EXCLUDED_SUFFIXES,
  GENERATED_DIR,
  identifierClashes,
  leftovers,
  type NameForms,
  nameForms,
  nameProblem,
  type RewritePlan,
  rewritePath,
  rewriteText,
  TEMPLATE_APP,
  TEMPLATE_PROTOCOL_ID,
  TEMPLATE_SERVICE,
} from '@handoff/create-daemon/rename';
import { nameConflict } from './names.js';
import {
  checkProtocolId,
  formatProtocolId,
  ProtocolIdError,
  pickFreeProtocolId,
} from './protocol-id.js';
import { tailorPackageJson, tailorReadme } from './tailor.js';
import { readWorkspace, type WorkspaceFacts } from './workspace.js';

const run = promisify(execFile);

export type ScaffoldErrorCode =
  /** Usage errors (exit 2): nothing in any workspace could make these right. */
  | 'BAD_NAME'
  | 'BAD_PROTOCOL_ID'
  /** Refusals (exit 1): fine on their own, but this workspace already has them. */
  | 'NAME_TAKEN'
  | 'PROTOCOL_ID_IN_USE'
  | 'NAME_CLASH'
  /** Failures (exit 1). */
  | 'TEMPLATE'
  | 'STEP_FAILED'
  | 'ABORTED';

export class ScaffoldError extends Error {
  override readonly name = 'ScaffoldError';
  readonly code: ScaffoldErrorCode;
  constructor(code: ScaffoldErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
  get isUsageError(): boolean {
    return this.code === 'BAD_NAME' || this.code === 'BAD_PROTOCOL_ID';
  }
}

export interface GenerateOptions {
  /** The repository root: the directory holding apps/. */
  readonly root: string;
  readonly name: string;
  /** Omitted: the lowest free private-use id. */
  readonly protocolId?: number | undefined;
  /** Check and plan only; write nothing. */
  readonly dryRun?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  /**
   * Runs in the staging directory once every file is written, before the
   * move into place. Default: regenerateAndFormat.
   */
  readonly finish?:
    | ((staging: string, root: string, signal?: AbortSignal) => Promise<void>)
    | undefined;
}

export interface GeneratedApp {
  readonly name: string;
  readonly forms: NameForms;
  /** Absolute. */
  readonly dir: string;
  /** `apps/<name>`. */
  readonly relativeDir: string;
  readonly packageName: string;
  readonly service: string;
  readonly protocolId: number;
  /** True when the id was picked, false when --protocol-id gave it. */
  readonly protocolIdPicked: boolean;
  readonly executables: { readonly client: string; readonly daemon: string };
  /** Relative to the app, sorted. */
  readonly files: readonly string[];
  readonly templateApp: string;
  readonly dryRun: boolean;
}

interface PlannedFile {
  readonly path: string;
  readonly content: Buffer | string;
  readonly mode: number;
}

/** Template files by relative path (with `/`), build output and installs aside. */
function templateFiles(dir: string, prefix = ''): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) {
      if (!EXCLUDED_DIRS.has(entry.name)) files.push(...templateFiles(dir, path));
    } else if (entry.isFile() && !EXCLUDED_SUFFIXES.some((suffix) => entry.name.endsWith(suffix))) {
      files.push(path);
    }
  }
  return files.sort();
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text is rewritten; anything that is not valid UTF-8 or holds a NUL is copied as it is. */
function asText(bytes: Buffer): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

const isCode = (path: string) =>
  /\.(?:[cm]?ts|[cm]?js)$/.test(path) && !path.startsWith(`${GENERATED_DIR}/`);

function checkTemplate(facts: WorkspaceFacts): void {
  const template = facts.projects.find((p) => p.group === 'apps' && p.dir === TEMPLATE_APP);
  if (!template) {
    throw new ScaffoldError(
      'TEMPLATE',
      `the template apps/${TEMPLATE_APP} is not in ${facts.root}`,
    );
  }
  const declared = facts.protocolIds.find(
    (use) => use.app === TEMPLATE_APP && use.where === 'package.json',
  );
  if (template.service !== TEMPLATE_SERVICE || declared?.id !== TEMPLATE_PROTOCOL_ID) {
    throw new ScaffoldError(
      'TEMPLATE',
      `apps/${TEMPLATE_APP}/package.json says "handoff": { "service": ${JSON.stringify(template.service)}, "payloadProtocol": ${JSON.stringify(declared && formatProtocolId(declared.id))} }, but packages/create-daemon/src/rename/template.ts knows the template as ${TEMPLATE_SERVICE} with ${formatProtocolId(TEMPLATE_PROTOCOL_ID)}: update one to match the other`,
    );
  }
}

function chooseProtocolId(facts: WorkspaceFacts, requested: number | undefined): number {
  try {
    if (requested === undefined) return pickFreeProtocolId(facts.protocolIds);
    checkProtocolId(requested, facts.protocolIds);
    return requested;
  } catch (error) {
    if (!(error instanceof ProtocolIdError)) throw error;
    const code = error.code === 'INVALID' ? 'BAD_PROTOCOL_ID' : 'PROTOCOL_ID_IN_USE';
    throw new ScaffoldError(code, error.message, error);
  }
}

function rewriteFile(path: string, text: string, plan: RewritePlan, app: GeneratedApp): string {
  const rewritten = rewriteText(text, plan);
  const tailored = { forms: app.forms, protocolId: app.protocolId, templateApp: app.templateApp };
  if (path === 'README.md') return tailorReadme(rewritten, tailored);
  if (path === 'package.json') return tailorPackageJson(rewritten, tailored);
  return rewritten;
}

/** Everything generateDaemon checks and computes before it writes: throws ScaffoldError. */
export function planDaemon(options: GenerateOptions): { app: GeneratedApp; files: PlannedFile[] } {
  const { root, name } = options;
  const facts = readWorkspace(root);
  checkTemplate(facts);
  // An existing directory first: for `demo-daemon` that says more than its suffix does.
  const existing = facts.appEntries.includes(name) ? nameConflict(name, facts) : undefined;
  if (existing !== undefined) throw new ScaffoldError('NAME_TAKEN', existing);
  const problem = nameProblem(name);
  if (problem !== undefined) throw new ScaffoldError('BAD_NAME', problem);
  const conflict = nameConflict(name, facts);
  if (conflict !== undefined) throw new ScaffoldError('NAME_TAKEN', conflict);
  const protocolId = chooseProtocolId(facts, options.protocolId);

  const forms = nameForms(name);
  const plan = createRewritePlan(DEMO_DAEMON_SOURCE, { forms, protocolId });
  const templateDir = join(root, 'apps', TEMPLATE_APP);
  const sources = templateFiles(templateDir).map((path) => {
    const bytes = readFileSync(join(templateDir, path));
    return {
      path,
      bytes,
      text: asText(bytes),
      mode: statSync(join(templateDir, path)).mode & 0o777,
    };
  });

  const missed = sources.flatMap(({ path, text }) => [
    ...leftovers(path, plan).map((l) => `${path} (its name): ${l.text}`),
    ...(text === undefined ? [] : leftovers(text, plan).map((l) => `${path}:${l.line}: ${l.text}`)),
  ]);
  if (missed.length > 0) {
    throw new ScaffoldError(
      'TEMPLATE',
      `the template spells its name in a way the scaffold does not rewrite (teach packages/create-daemon/src/rename/rewrite.ts or template.ts):\n  ${missed.slice(0, 12).join('\n  ')}`,
    );
  }
  const code = sources.flatMap(({ path, text }) =>
    isCode(path) && text !== undefined ? [{ path, text }] : [],
  );
  const clashes = identifierClashes(code, plan);
  if (clashes.length > 0) {
    const shown = clashes.slice(0, 3).map((c) => `${c.from} into ${c.to} (${c.file})`);
    throw new ScaffoldError(
      'NAME_CLASH',
      `the name ${JSON.stringify(name)} would turn ${shown.join(', ')}, which the template already uses for something else; pick another name`,
    );
  }

  const app: GeneratedApp = {
    name,
    forms,
    dir: join(root, 'apps', name),
    relativeDir: `apps/${name}`,
    packageName: `@handoff/${name}`,
    service: name,
    protocolId,
    protocolIdPicked: options.protocolId === undefined,
    executables: { client: name, daemon: `${name}-daemon` },
    files: [],
    templateApp: TEMPLATE_APP,
    dryRun: options.dryRun === true,
  };
  const files = sources.map(({ path, bytes, text, mode }) => ({
    path: rewritePath(path, plan),
    content: text === undefined ? bytes : rewriteFile(path, text, plan, app),
    mode,
  }));
  checkManifest(files, app);
  return { app: { ...app, files: files.map((f) => f.path).sort() }, files };
}

/** The copy's package.json must name the package and both executables as promised. */
function checkManifest(files: readonly PlannedFile[], app: GeneratedApp): void {
  const manifest = files.find((f) => f.path === 'package.json');
  const parsed = manifest && JSON.parse(String(manifest.content));
  const bins = Object.keys(parsed?.bin ?? {}).sort();
  const expected = [app.executables.client, app.executables.daemon].sort();
  if (parsed?.name !== app.packageName || bins.join() !== expected.join()) {
    throw new ScaffoldError(
      'TEMPLATE',
      `the copied package.json names ${JSON.stringify(parsed?.name)} with executables ${JSON.stringify(bins)}, not ${app.packageName} with ${JSON.stringify(expected)}: the template's package.json changed shape`,
    );
  }
}

async function step(what: string, file: string, args: string[], cwd: string, signal?: AbortSignal) {
  try {
    await run(file, args, { cwd, signal, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    if (signal?.aborted) throw new ScaffoldError('ABORTED', `interrupted while ${what}`, error);
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    const output = `${stdout ?? ''}${stderr ?? ''}`.trim();
    throw new ScaffoldError(
      'STEP_FAILED',
      `${what} failed: ${(error as Error).message.split('\n')[0]}${output ? `\n${output}` : ''}`,
      error,
    );
  }
}

/**
 * The default finish: the app's own `generate` script (the workspace's
 * `handoff-codegen <base-name> <root>`, renamed with the rest) makes
 * src/generated/ from the renamed proto (its test diffs the two), and Biome
 * formats and sorts imports, since renamed identifiers change line lengths
 * and import order.
 */
export async function regenerateAndFormat(staging: string, root: string, signal?: AbortSignal) {
  const script: unknown = JSON.parse(readFileSync(join(staging, 'package.json'), 'utf8')).scripts
    ?.generate;
  const [command, ...args] = typeof script === 'string' ? script.trim().split(/\s+/) : [];
  if (command === 'handoff-codegen') {
    const codegen = join(root, 'node_modules', '.bin', 'handoff-codegen');
    await step('regenerating the protobuf code', codegen, args, staging, signal);
  }
  const biome = join(root, 'node_modules', '.bin', 'biome');
  if (!existsSync(biome)) {
    throw new ScaffoldError('STEP_FAILED', `${biome} not found: run npm ci first`);
  }
  // Not through git's ignore file: the staging directory is what is checked.
  await step(
    'formatting with biome',
    biome,
    ['check', '--write', '--vcs-enabled=false', staging],
    root,
    signal,
  );
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ScaffoldError('ABORTED', 'interrupted; nothing was changed');
}

/**
 * Creates apps/<name>. The copy is assembled in `apps/.<name>.staging-*` (a
 * dot keeps it out of the npm workspaces) and renamed into place: rename(2)
 * on one filesystem, so apps/<name> appears whole or not at all.
 */
export async function generateDaemon(options: GenerateOptions): Promise<GeneratedApp> {
  const { app, files } = planDaemon(options);
  if (app.dryRun) return app;
  aborted(options.signal);
  const appsDir = dirname(app.dir);
  const staging = mkdtempSync(join(appsDir, `.${app.name}.staging-`));
  let placed = false;
  try {
    for (const file of files) {
      const path = join(staging, file.path);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, file.content);
      chmodSync(path, file.mode);
    }
    // mkdtemp made it 0700; the app gets the template's mode.
    chmodSync(staging, statSync(join(appsDir, app.templateApp)).mode & 0o777);
    await (options.finish ?? regenerateAndFormat)(staging, options.root, options.signal);
    aborted(options.signal);
    // Claim the name first: mkdir fails if anything is there. rename(2) then
    // replaces only our own empty directory, and fails should anyone have
    // written into it meanwhile.
    try {
      mkdirSync(app.dir);
    } catch (error) {
      throw new ScaffoldError(
        'NAME_TAKEN',
        `${app.relativeDir} appeared while the copy was made; nothing was changed`,
        error,
      );
    }
    try {
      renameSync(staging, app.dir);
      placed = true;
    } catch (error) {
      try {
        rmdirSync(app.dir); // ours, if still empty
      } catch {}
      throw new ScaffoldError(
        'STEP_FAILED',
        `moving the copy into ${app.relativeDir} failed`,
        error,
      );
    }
  } finally {
    if (!placed) rmSync(staging, { recursive: true, force: true });
  }
  return app;
}

/**
 * `npm install` at the root, so the workspace link and package-lock.json
 * include the new app (and `npm ci` on a fresh clone keeps working). Its
 * output goes to our stderr: stdout may be carrying --json.
 */
export async function installWorkspace(root: string, signal?: AbortSignal): Promise<void> {
  // Run as `npm run -s new-daemon`, we inherit npm_config_loglevel=silent,
  // which would hide why an install failed.
  const { npm_config_loglevel: _silent, ...env } = process.env;
  const child = spawn('npm', ['install', '--no-audit', '--no-fund'], {
    cwd: root,
    env,
    stdio: ['ignore', 2, 2],
    ...(signal ? { signal } : {}),
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  }).catch((error: Error) => {
    throw new ScaffoldError('STEP_FAILED', `npm install could not run: ${error.message}`, error);
  });
  if (code !== 0) throw new ScaffoldError('STEP_FAILED', `npm install exited with ${code}`);
}
