// `handoff-broker install --systemd`: writes the broker's user units
// (src/systemd/units.ts renders them) into the user's systemd directory,
// atomically, never overwriting a different file without --force. It does
// not run systemctl: the user enables the units (the next steps say how).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  jsonFailure,
  type ParsedArgs,
  UsageError,
} from '@handoff/backend-sdk/cli';
import { defaultConfigDir, defaultUserUnitDir } from '../paths.js';
import {
  brokerCliEntry,
  type RenderedUnit,
  renderBrokerUnits,
  SOCKET_UNIT,
} from '../systemd/units.js';
import { integerOption, jsonOption, stringOption } from './command.js';
import type { CliIo } from './output.js';
import { EXIT_GRACE_MS } from './serve.js';

/**
 * The directory the service may write besides its sockets (daemon logs):
 * `$XDG_STATE_HOME/handoff` when that is absolute, else undefined — the
 * unit's own default, `%h/.local/state/handoff`, which `home` locates here.
 */
export function userStateDir(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): { unit: string | undefined; path: string } {
  const state = env.XDG_STATE_HOME;
  if (state && isAbsolute(state)) {
    const path = join(state, 'handoff');
    return { unit: path, path };
  }
  return { unit: undefined, path: join(home, '.local', 'state', 'handoff') };
}

export const NEXT_STEPS = [
  'systemctl --user daemon-reload',
  `systemctl --user enable --now ${SOCKET_UNIT}`,
];

type Outcome = 'written' | 'unchanged' | 'replaced';

async function currentText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Temp file in the same directory, then rename: a reader never sees half a unit. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, { mode: 0o644, flag: 'wx' });
    // 0644 whatever the umask: systemd only needs to read it, and so may the user's tools.
    await chmod(temp, 0o644);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export const installCommand: Command = {
  name: 'install',
  summary: 'write systemd user units for the broker (socket-activated, hardened)',
  usage:
    'install --systemd [--dir DIR] [--socket PATH] [--config-dir DIR] [--config-file FILE] [--drain MS] [--force] [--json]',
  help: [
    ['--systemd', 'write handoff-broker.socket and handoff-broker.service (required)'],
    ['--dir DIR', 'where (default: $XDG_CONFIG_HOME/systemd/user or ~/.config/systemd/user)'],
    [
      '--socket PATH',
      'the socket to listen on (default: $HANDOFF_BROKER_SOCKET, else',
      '%t/handoff/broker.sock, i.e. $XDG_RUNTIME_DIR/handoff/broker.sock)',
    ],
    ['--config-dir DIR', 'passed to `serve` (default: its own)'],
    ['--config-file FILE', 'passed to `serve`'],
    ['--drain MS', 'passed to `serve` (default 5000); the stop timeout follows it'],
    ['--force', 'replace unit files that differ from these'],
    [
      '--json',
      'print one JSON document (schema_version 1): ok, files, next; on failure ok: false,',
      'code, message',
    ],
  ],
  options: {
    ...jsonOption,
    systemd: { type: 'boolean' },
    dir: { type: 'string' },
    socket: { type: 'string' },
    'config-dir': { type: 'string' },
    'config-file': { type: 'string' },
    drain: { type: 'string' },
    force: { type: 'boolean' },
  },
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    if (args.values.systemd !== true)
      throw new UsageError('--systemd is required (the only kind of install there is)', 'install');
    const json = args.values.json === true;
    const fail = (code: string, message: string): number => {
      if (json) io.stdout(jsonFailure(code, message, { files: [], next: [] }));
      io.stderr(`handoff-broker install: ${message}\n`);
      return EXIT_FAILED;
    };
    // Relative paths mean "from here", which the unit, run from elsewhere, cannot know.
    const absolute = (name: string): string | undefined => {
      const value = stringOption(args, name);
      if (value === '') throw new UsageError(`--${name} must not be empty`, 'install');
      return value === undefined ? undefined : resolve(value);
    };
    const dir = absolute('dir') ?? defaultUserUnitDir(io.env);
    const socketPath = absolute('socket') ?? (io.env.HANDOFF_BROKER_SOCKET || undefined);
    const cliEntry = brokerCliEntry();
    // Only a source checkout lacks it; the units are still right once it is built.
    const warnings = existsSync(cliEntry)
      ? []
      : [
          `${cliEntry} does not exist yet: build the package (npm run build) before starting the units`,
        ];
    const state = userStateDir(io.env);
    let units: RenderedUnit[];
    try {
      units = renderBrokerUnits({
        nodePath: process.execPath,
        cliEntry,
        socketPath: socketPath === undefined ? undefined : resolve(socketPath),
        configDir: absolute('config-dir'),
        configFile: absolute('config-file'),
        stateDir: state.unit,
        drainMs: integerOption(args, 'drain', 5000, 'install'),
        exitGraceMs: EXIT_GRACE_MS,
      });
    } catch (error) {
      if (error instanceof UsageError) throw error;
      return fail('UNITS', (error as Error).message);
    }

    await mkdir(dir, { recursive: true });
    const plan: { path: string; text: string; outcome: Outcome }[] = [];
    for (const unit of units) {
      const path = join(dir, unit.name);
      const existing = await currentText(path);
      plan.push({
        path,
        text: unit.text,
        outcome:
          existing === undefined ? 'written' : existing === unit.text ? 'unchanged' : 'replaced',
      });
    }
    // Check every file before writing any, so a refusal leaves the pair as it was.
    const differing = plan.filter((p) => p.outcome === 'replaced').map((p) => p.path);
    if (differing.length > 0 && args.values.force !== true)
      return fail(
        'UNITS_DIFFER',
        `${differing.join(' and ')} already exist${differing.length === 1 ? 's' : ''} with different contents; ` +
          'pass --force to replace (or remove them)',
      );
    for (const p of plan) if (p.outcome !== 'unchanged') await writeAtomically(p.path, p.text);
    // Under ProtectSystem=strict the service cannot create it inside a read-only home.
    await mkdir(state.path, { recursive: true, mode: 0o700 });
    // `serve` refuses to start on a missing definitions directory (CONFIG_DIR_MISSING):
    // the one the unit will read exists, empty until services are added.
    if (args.values['config-file'] === undefined)
      await mkdir(absolute('config-dir') ?? defaultConfigDir(io.env), {
        recursive: true,
        mode: 0o700,
      });

    const files = plan.map((p) => ({ path: p.path, status: p.outcome }));
    if (json) {
      io.stdout(
        `${JSON.stringify({ schema_version: 1, ok: true, files, next: NEXT_STEPS, warnings })}\n`,
      );
    } else {
      for (const warning of warnings) io.stderr(`handoff-broker install: warning: ${warning}\n`);
      const text = [
        ...files.map((f) => `${f.status.padEnd(9)} ${f.path}`),
        '',
        'Next:',
        `  ${NEXT_STEPS.join(' && ')}`,
        '',
      ].join('\n');
      io.stdout(text);
    }
    return EXIT_OK;
  },
};
