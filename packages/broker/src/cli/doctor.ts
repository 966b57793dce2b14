// `handoff-broker doctor`: checks the things that stop a broker from
// working — a private socket directory (DESIGN §5), a live (not stale)
// broker socket, a healthy broker, service definitions that load, a
// systemd unit that still starts it — and says PASS, WARN or FAIL for
// each. Exit 1 on any FAIL.
import { lstat } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { type Command, EXIT_FAILED, EXIT_OK, type ParsedArgs } from '@handoff/backend-sdk/cli';
import { AdminVerb } from '@handoff/protocol';
import { adminRequest } from '../client/admin-client.js';
import { loadServiceDefinitions } from '../config/load.js';
import { defaultConfigDir, defaultUserUnitDir } from '../paths.js';
import {
  brokerSocketPath,
  integerOption,
  JSON_HELP,
  jsonOption,
  SOCKET_HELP,
  socketOption,
  stringOption,
  TIMEOUT_HELP,
  timeoutOption,
} from './command.js';
import { brokerDefinitionChecks } from './doctor-config.js';
import { crashReportChecks, doctorStateDir } from './doctor-crashes.js';
import { systemdUnitChecks } from './doctor-units.js';
import {
  type CheckLine,
  type CliIo,
  checkLines,
  describeAdminError,
  isAdminClientError,
} from './output.js';

export interface ServiceDefinitionProblem {
  file: string;
  field?: string | undefined;
  message: string;
}

/** What doctor needs of the service-definition loader (src/config/load.ts). */
export type ServiceDefinitionLoader = (source: {
  dir?: string;
  file?: string;
}) =>
  | Promise<{ services: readonly unknown[]; errors: readonly ServiceDefinitionProblem[] }>
  | { services: readonly unknown[]; errors: readonly ServiceDefinitionProblem[] };

export interface DoctorOptions {
  socketPath: string;
  loadServices: ServiceDefinitionLoader;
  configDir?: string;
  configFile?: string;
  timeoutMs?: number;
  /** Whose directory it should be (default: our uid). */
  uid?: number;
  /**
   * Report what the running broker loaded (admin CONFIG) rather than read
   * files; files are read only when no broker answers (doctor-config.ts).
   */
  askBroker?: boolean;
  /** Where to list crash reports from (doctor-crashes.ts); absent: not listed. */
  stateDir?: string | undefined;
  /** Where `install --systemd` writes the units (doctor-units.ts); absent: not checked. */
  unitDir?: string | undefined;
}

export async function runDoctor(options: DoctorOptions): Promise<CheckLine[]> {
  return [
    ...(await checkSocketDirectory(dirname(options.socketPath), options.uid ?? process.getuid?.())),
    await checkSocketFile(options.socketPath),
    await checkHealth(options.socketPath, options.timeoutMs ?? 5000),
    ...(await checkServiceDefinitions(options)),
    ...(options.stateDir === undefined ? [] : crashReportChecks(options.stateDir)),
    ...(options.unitDir === undefined ? [] : systemdUnitChecks(options.unitDir)),
  ];
}

const pass = (name: string, detail: string): CheckLine => ({ name, verdict: 'PASS', detail });
const warn = (name: string, detail: string): CheckLine => ({ name, verdict: 'WARN', detail });
const fail = (name: string, detail: string): CheckLine => ({ name, verdict: 'FAIL', detail });

async function checkSocketDirectory(dir: string, uid: number | undefined): Promise<CheckLine[]> {
  const name = 'socket directory';
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Not fatal on its own: `serve` creates it, 0700.
    if (code === 'ENOENT')
      return [warn(name, `${dir} does not exist (serve creates it, mode 0700)`)];
    return [fail(name, `cannot inspect ${dir} (${code ?? (error as Error).message})`)];
  }
  if (!info.isDirectory())
    return [fail(name, `${dir} is not a directory (a symlink is not accepted)`)];
  const checks = [pass(name, `${dir} exists`)];
  checks.push(
    uid === undefined || info.uid === uid
      ? pass('directory owner', `owned by us (uid ${info.uid})`)
      : fail(
          'directory owner',
          `owned by uid ${info.uid}, not by us (uid ${uid}); the broker refuses it`,
        ),
  );
  const mode = info.mode & 0o777;
  const octal = mode.toString(8).padStart(3, '0');
  if (mode & 0o022) {
    checks.push(
      fail(
        'directory mode',
        `mode ${octal}: writable by group or others, who could replace the socket; chmod 700 ${dir}`,
      ),
    );
  } else if (mode & 0o055) {
    checks.push(warn('directory mode', `mode ${octal}: others can list it; 0700 is recommended`));
  } else {
    checks.push(pass('directory mode', `mode ${octal}`));
  }
  return checks;
}

function canConnect(path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

async function checkSocketFile(path: string): Promise<CheckLine> {
  const name = 'broker socket';
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      return fail(name, `no socket at ${path} — is \`handoff-broker serve\` running?`);
    return fail(name, `cannot inspect ${path} (${code ?? (error as Error).message})`);
  }
  if (!info.isSocket()) return fail(name, `${path} exists but is not a socket`);
  const refused = await canConnect(path);
  if (refused !== null) {
    return fail(
      name,
      `${path} is stale: nothing accepts on it (${refused}); a broker that died left it — \`serve\` replaces it`,
    );
  }
  if (info.mode & 0o077)
    return warn(
      name,
      `${path} accepts connections but has mode ${(info.mode & 0o777).toString(8)}, not 600`,
    );
  return pass(name, `${path} accepts connections`);
}

async function checkHealth(socketPath: string, timeoutMs: number): Promise<CheckLine> {
  const name = 'broker health';
  try {
    const reply = await adminRequest(
      socketPath,
      { verb: AdminVerb.HEALTHZ, json: true },
      { timeoutMs },
    );
    if (reply.exitCode === 0) return pass(name, 'HEALTHZ: healthy');
    let failing = '';
    try {
      const body = JSON.parse(reply.body) as {
        checks?: { name: string; ok: boolean; detail: string }[];
      };
      failing = (body.checks ?? [])
        .filter((c) => !c.ok)
        .map((c) => `${c.name}: ${c.detail}`)
        .join('; ');
    } catch {
      failing = reply.body.trim();
    }
    return fail(name, `HEALTHZ: unhealthy${failing ? ` (${failing})` : ''}`);
  } catch (error) {
    if (!isAdminClientError(error)) throw error;
    return fail(name, describeAdminError(error));
  }
}

async function checkServiceDefinitions(options: DoctorOptions): Promise<CheckLine[]> {
  const name = 'service definitions';
  if (options.askBroker) {
    const loaded = await brokerDefinitionChecks(options.socketPath, options.timeoutMs ?? 5000);
    if (loaded !== null) return loaded;
  }
  const source = {
    ...(options.configDir === undefined ? {} : { dir: options.configDir }),
    ...(options.configFile === undefined ? {} : { file: options.configFile }),
  };
  let result: Awaited<ReturnType<ServiceDefinitionLoader>>;
  try {
    result = await options.loadServices(source);
  } catch (error) {
    return [fail(name, `cannot load: ${(error as Error).message}`)];
  }
  if (result.errors.length > 0) {
    // The loader's messages already name their file and field; others get them added.
    return result.errors.map((e) =>
      fail(
        name,
        e.message.startsWith(e.file)
          ? e.message
          : `${e.file}${e.field ? `: ${e.field}` : ''}: ${e.message}`,
      ),
    );
  }
  const files = [options.configDir, options.configFile].filter(Boolean).join(', ') || 'nowhere';
  const where = options.askBroker ? `${files}; no broker answered, so the files were read` : files;
  if (result.services.length === 0)
    return [warn(name, `no services defined (${where}); every Hello will be refused`)];
  return [pass(name, `${result.services.length} loaded from ${where}`)];
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check the socket directory, the broker, the service definitions and the systemd unit',
  usage:
    'doctor [--config-dir DIR] [--config-file FILE] [--state-dir DIR] [--json] [--socket PATH] [--timeout MS]',
  help: [
    '--config-dir DIR    a directory of service definition files to check (without it or',
    '                    --config-file: what the running broker loaded, else $HANDOFF_CONFIG_DIR',
    '                    or ~/.config/handoff/services when no broker answers)',
    '--config-file FILE  one service definition file to check',
    "--state-dir DIR     where to look for crash reports (default: the running broker's, else the default)",
    JSON_HELP,
    SOCKET_HELP,
    TIMEOUT_HELP,
  ],
  options: {
    ...socketOption,
    ...jsonOption,
    ...timeoutOption,
    'config-dir': { type: 'string' },
    'config-file': { type: 'string' },
    'state-dir': { type: 'string' },
  },
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    const configFile = stringOption(args, 'config-file');
    // The same default as `serve`: without flags, the per-user directory.
    const configDir =
      stringOption(args, 'config-dir') ??
      (configFile === undefined ? defaultConfigDir(io.env) : undefined);
    const checks = await runDoctor({
      socketPath: brokerSocketPath(args, io.env),
      loadServices: loadServiceDefinitions,
      timeoutMs: integerOption(args, 'timeout', 5000, 'doctor'),
      // Without flags, what the running broker loaded is what matters.
      askBroker: configFile === undefined && stringOption(args, 'config-dir') === undefined,
      stateDir: await doctorStateDir(
        stringOption(args, 'state-dir'),
        brokerSocketPath(args, io.env),
        io.env,
        integerOption(args, 'timeout', 5000, 'doctor'),
      ),
      unitDir: defaultUserUnitDir(io.env),
      ...(configDir === undefined ? {} : { configDir }),
      ...(configFile === undefined ? {} : { configFile }),
    });
    const ok = !checks.some((c) => c.verdict === 'FAIL');
    if (args.values.json === true)
      io.stdout(`${JSON.stringify({ schema_version: 1, ok, ...doctorVerdict(checks), checks })}\n`);
    else io.stdout(checkLines(checks));
    return ok ? EXIT_OK : EXIT_FAILED;
  },
};

/** Under --json, a failing doctor's code and message: its first FAIL (CLI contract). */
function doctorVerdict(checks: readonly CheckLine[]): { code?: string; message?: string } {
  const failed = checks.find((c) => c.verdict === 'FAIL');
  return failed ? { code: 'CHECK_FAILED', message: `${failed.name}: ${failed.detail}` } : {};
}
