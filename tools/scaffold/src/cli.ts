// `npm run new-daemon -- <name> [--protocol-id ID]`: the command line —
// flags, output (text, or one JSON object with --json) and exit codes: 0
// created, 1 refused (name or id taken) or failed, 2 usage error. main.ts
// gives it the real process; tests give it strings.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MAX_NAME_LENGTH, TEMPLATE_APP } from '@handoff/create-daemon/rename';
import { type GeneratedApp, generateDaemon, installWorkspace, ScaffoldError } from './generate.js';
import { nextSteps, renderNextSteps } from './next-steps.js';
import { formatProtocolId, ProtocolIdError, parseProtocolId } from './protocol-id.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface ScaffoldIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readonly signal?: AbortSignal;
}

/** tools/scaffold/src → the repository root. */
export const DEFAULT_ROOT = join(import.meta.dirname, '..', '..', '..');

const PROGRAM = 'new-daemon';

export const USAGE = `Usage: npm run new-daemon -- <name> [--protocol-id ID] [options]

Creates apps/<name>, a daemon copied from apps/${TEMPLATE_APP} under names of its
own: service <name>, package @handoff/<name>, executables <name> (the client)
and <name>-daemon, proto package handoff.<name_in_snake_case>.v1, and a
payload protocol id no app uses. Then runs npm install at the repository root.

Options:
  --protocol-id ID  hex (0xF0A1) or decimal; private use (0xF000–0xFFFF) and
                    used by no app (default: the lowest free id from 0xF001)
  --dry-run         check the name and id, list what would be written, write nothing
  --no-install      skip npm install (run it before you commit: package-lock.json)
  --json            one JSON object on stdout (schema_version 1)
  --root DIR        the repository (default: the one this tool is in)
  -h, --help        this help

A name is 1–${MAX_NAME_LENGTH} lowercase letters, digits and single hyphens, starting
with a letter and not ending in -daemon; apps/<name> must not exist, and no
workspace may have the name, the package or either executable.
Exit codes: 0 created; 1 refused (name or id taken) or failed; 2 usage error.
`;

class UsageError extends Error {}

interface Flags {
  name: string;
  protocolId: number | undefined;
  root: string;
  dryRun: boolean;
  install: boolean;
  json: boolean;
}

/** Flags from argv, or 'help'; throws UsageError. */
export function parseFlags(argv: readonly string[]): Flags | 'help' {
  const config = {
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      'protocol-id': { type: 'string' },
      'dry-run': { type: 'boolean' },
      'no-install': { type: 'boolean' },
      json: { type: 'boolean' },
      root: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  } as const;
  let parsed: ReturnType<typeof parseArgs<typeof config>>;
  try {
    parsed = parseArgs(config);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length === 0) throw new UsageError('a name is required');
  if (positionals.length > 1) {
    throw new UsageError(
      `one name only, not ${positionals.map((p) => JSON.stringify(p)).join(' ')}`,
    );
  }
  let protocolId: number | undefined;
  if (values['protocol-id'] !== undefined) {
    try {
      protocolId = parseProtocolId(values['protocol-id']);
    } catch (error) {
      if (error instanceof ProtocolIdError) throw new UsageError(error.message);
      throw error;
    }
  }
  if (values.root === '') throw new UsageError('--root needs a directory');
  return {
    name: positionals[0]!,
    protocolId,
    root: values.root === undefined ? DEFAULT_ROOT : resolve(values.root),
    dryRun: values['dry-run'] === true,
    install: values['no-install'] !== true,
    json: values.json === true,
  };
}

function summary(app: GeneratedApp, installed: boolean): string {
  const id = `${formatProtocolId(app.protocolId)}${app.protocolIdPicked ? ' (the lowest free private-use id)' : ''}`;
  const lines = [
    app.dryRun
      ? `Would create ${app.relativeDir} from apps/${app.templateApp} (dry run: nothing written)`
      : `Created ${app.relativeDir} from apps/${app.templateApp}`,
    `  service           ${app.service} (its client: ${app.executables.client}, its daemon: ${app.executables.daemon})`,
    `  payload protocol  ${id}`,
    `  package           ${app.packageName}`,
    `  proto             proto/${app.forms.snake}_v1.proto, package handoff.${app.forms.snake}.v1`,
    `  files             ${app.files.length}`,
  ];
  if (app.dryRun) return `${lines.join('\n')}\n${app.files.map((f) => `    ${f}\n`).join('')}`;
  const install = installed
    ? 'npm install linked it and updated package-lock.json.'
    : 'npm install was skipped (--no-install).';
  return `${lines.join('\n')}\n${install}\n\nNext steps, from the repository root:\n${renderNextSteps(nextSteps(app, installed))}`;
}

function json(app: GeneratedApp, installed: boolean): string {
  const steps = app.dryRun ? [] : nextSteps(app, installed);
  return `${JSON.stringify({
    schema_version: 1,
    dry_run: app.dryRun,
    name: app.name,
    dir: app.relativeDir,
    package: app.packageName,
    service: app.service,
    payload_protocol: formatProtocolId(app.protocolId),
    payload_protocol_picked: app.protocolIdPicked,
    executables: app.executables,
    proto_package: `handoff.${app.forms.snake}.v1`,
    files: app.files,
    installed,
    next_steps: steps.map((s) => ({
      ...(s.say === undefined ? {} : { say: s.say }),
      ...(s.argv ? { argv: s.argv } : {}),
      ...(s.stdoutTo ? { stdout_to: s.stdoutTo } : {}),
    })),
  })}\n`;
}

/** Runs one command line; returns the exit code. Never throws for an expected failure. */
export async function runScaffold(argv: readonly string[], io: ScaffoldIo): Promise<number> {
  let flags: Flags | 'help';
  try {
    flags = parseFlags(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`${PROGRAM}: ${error.message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (flags === 'help') {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  const asJson = flags.json;
  const fail = (code: string, message: string, exit: number) => {
    io.stderr(`${PROGRAM}: ${message}\n`);
    if (asJson) {
      io.stdout(`${JSON.stringify({ schema_version: 1, error: { code, message } })}\n`);
    }
    return exit;
  };
  let app: GeneratedApp;
  try {
    app = await generateDaemon({
      root: flags.root,
      name: flags.name,
      protocolId: flags.protocolId,
      dryRun: flags.dryRun,
      signal: io.signal,
    });
  } catch (error) {
    if (error instanceof ScaffoldError) {
      return fail(error.code, error.message, error.isUsageError ? EXIT_USAGE : EXIT_FAILED);
    }
    return fail('UNEXPECTED', `unexpected error: ${(error as Error)?.stack ?? error}`, EXIT_FAILED);
  }
  let installed = false;
  if (!app.dryRun && flags.install) {
    io.stderr(`${PROGRAM}: created ${app.relativeDir}; running npm install\n`);
    try {
      await installWorkspace(flags.root, io.signal);
      installed = true;
    } catch (error) {
      const message = (error as Error).message;
      return fail(
        'STEP_FAILED',
        `${app.relativeDir} was created, but ${message}; run npm install at the repository root yourself`,
        EXIT_FAILED,
      );
    }
  }
  io.stdout(flags.json ? json(app, installed) : summary(app, installed));
  return EXIT_OK;
}
