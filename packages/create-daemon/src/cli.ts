// `create-daemon <directory> [--template minimal|kv] [--name NAME] [--json]`
// (what `npm create @handoff/daemon` runs): flags, output — text, or one
// JSON object with --json — and exit codes: 0 created, 1 refused or
// failed, 2 usage error. main.ts gives it the real process; tests give it
// strings.
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CreateError,
  createProject,
  type ProjectPlan,
  TEMPLATES,
  type TemplateName,
} from './create.js';
import { CreateDaemonError } from './errors.js';
import { MAX_NAME_LENGTH } from './rename/names.js';
import { formatProtocolId } from './rename/protocol-id.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readonly cwd: string;
}

const PROGRAM = 'create-daemon';

export const USAGE = `Usage: npm create @handoff/daemon@latest <directory> [-- options]
       create-daemon <directory> [options]

Creates a standalone daemon project in <directory> (new, or empty), built
on the published @handoff packages: a daemon that serves framed requests
under its own payload protocol id and answers identity probes, a broker
that starts it on demand and hands client connections to it (npm start),
a client (npm run client), and tests with real sockets.

Options:
  --template NAME  minimal (default): a small framed service to make yours
                   kv: the handoff demo daemon, an in-memory key-value cache
                   with a line wire, protobuf payloads and a CLI
  --name NAME      the service name (default: the directory's name without
                   a trailing -daemon: my-daemon serves "my")
  --json           one JSON object on stdout (schema_version 1)
  -h, --help       this help

A service name is 1–${MAX_NAME_LENGTH} lowercase letters, digits and single hyphens,
starting with a letter and not ending in -daemon.
Exit codes: 0 created; 1 refused (directory not empty) or failed; 2 usage error.
`;

/** A command line that cannot be run as written: usage on stderr, exit 2. */
class UsageError extends CreateDaemonError {
  static override readonly brand: string = '@handoff/create-daemon:UsageError';
  override readonly name = 'UsageError';
  declare readonly code: 'USAGE';
  constructor(message: string) {
    super('USAGE', message);
  }
}

interface Flags {
  target: string;
  template: TemplateName;
  name: string | undefined;
  json: boolean;
}

export function parseFlags(argv: readonly string[]): Flags | 'help' {
  const config = {
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      template: { type: 'string' },
      name: { type: 'string' },
      json: { type: 'boolean' },
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
  if (positionals.length === 0) throw new UsageError('a directory is required');
  if (positionals.length > 1) {
    throw new UsageError(
      `one directory only, not ${positionals.map((p) => JSON.stringify(p)).join(' ')}`,
    );
  }
  if (positionals[0] === '') throw new UsageError('the directory is empty');
  const template = values.template ?? 'minimal';
  if (!(TEMPLATES as readonly string[]).includes(template)) {
    throw new UsageError(
      `unknown template ${JSON.stringify(template)}; one of: ${TEMPLATES.join(', ')}`,
    );
  }
  return {
    target: positionals[0]!,
    template: template as TemplateName,
    name: values.name,
    json: values.json === true,
  };
}

/** Quotes for a POSIX shell only where needed. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The commands to run next, from where create-daemon ran: one line, verbatim. */
export function nextSteps(plan: ProjectPlan, cwd: string): string[] {
  const where = relative(cwd, plan.dir);
  const cd = where === '' ? [] : [`cd ${shellQuote(where.startsWith('..') ? plan.dir : where)}`];
  return [...cd, 'npm install', 'npm test', 'npm start'];
}

function summary(plan: ProjectPlan, cwd: string): string {
  const lines = [
    `Created ${plan.dir} (template ${plan.template})`,
    `  service           ${plan.forms.kebab}${plan.executables ? ` (its client: ${plan.executables.client}, its daemon: ${plan.executables.daemon})` : ''}`,
    `  payload protocol  ${formatProtocolId(plan.protocolId)}`,
    `  package           ${plan.packageName}`,
    `  files             ${plan.files.length}`,
    '',
    'Next:',
    `  ${nextSteps(plan, cwd).join(' && ')}`,
    '',
    'npm start runs a broker with your daemon registered and prints the',
    'command that asks it something (npm run client -- …) from another terminal.',
  ];
  return `${lines.join('\n')}\n`;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
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
  let plan: ProjectPlan;
  try {
    plan = createProject({
      target: flags.target,
      cwd: io.cwd,
      template: flags.template,
      name: flags.name,
    });
  } catch (error) {
    const known = error instanceof CreateError;
    const code = known ? error.code : 'UNEXPECTED';
    const message = known ? error.message : `unexpected error: ${(error as Error)?.stack ?? error}`;
    io.stderr(`${PROGRAM}: ${message}\n`);
    if (flags.json)
      io.stdout(`${JSON.stringify({ schema_version: 1, error: { code, message } })}\n`);
    return known && error.isUsageError ? EXIT_USAGE : EXIT_FAILED;
  }
  if (flags.json) {
    io.stdout(
      `${JSON.stringify({
        schema_version: 1,
        dir: plan.dir,
        template: plan.template,
        service: plan.forms.kebab,
        package: plan.packageName,
        payload_protocol: formatProtocolId(plan.protocolId),
        ...(plan.executables ? { executables: plan.executables } : {}),
        files: plan.files.map((f) => f.path),
        next_steps: nextSteps(plan, io.cwd),
      })}\n`,
    );
  } else {
    io.stdout(summary(plan, io.cwd));
  }
  return EXIT_OK;
}
