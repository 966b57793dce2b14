// `serve`'s configuration gate: before the broker starts, its config
// directory and files must load cleanly, or serve refuses (exit 1) naming
// the file, line and column — unless --allow-empty, when it warns and starts
// with whatever is valid. The check itself is config/startup-check.ts.
import { jsonFailure, type OptionHelp, type OptionSpecs } from '@handoff/backend-sdk/cli';
import type { ConfigError } from '../config/config-error.js';
import { checkStartupConfig } from '../config/startup-check.js';
import type { CliIo } from './output.js';

export const configGateOptions: OptionSpecs = {
  'allow-empty': { type: 'boolean' },
  json: { type: 'boolean' },
};

export const CONFIG_GATE_HELP: OptionHelp[] = [
  [
    '--allow-empty',
    'start even when the configuration is missing or invalid (warns; serves the valid',
    'definitions, if any); without it serve refuses to start, naming the file, line and column',
  ],
  [
    '--json',
    'one JSON document on stdout: the refusal to start (ok, code, message, file, line,',
    'column), or that it serves',
  ],
];

export interface ServeConfigGate {
  dir?: string | undefined;
  file?: string | undefined;
  dirIsDefault: boolean;
  allowEmpty: boolean;
  json: boolean;
}

/**
 * Checks the configuration serve was given. Returns the refusal (already
 * reported on stdout under --json, else on stderr) or null to go on.
 */
export async function gateServeConfig(
  gate: ServeConfigGate,
  io: CliIo,
): Promise<ConfigError | null> {
  const { load, error } = await checkStartupConfig({
    ...(gate.dir === undefined ? {} : { dir: gate.dir }),
    ...(gate.file === undefined ? {} : { file: gate.file }),
    dirIsDefault: gate.dirIsDefault,
  });
  const where = [gate.dir, gate.file].filter((s) => s !== undefined).join(', ');
  if (error === null) {
    if (load.services.length === 0)
      io.stderr(
        `handoff-broker serve: warning: no service definitions in ${where}; every Hello is refused until one is added\n`,
      );
    return null;
  }
  const others = error.problems.slice(1).map((p) => `  also: ${p.message}\n`);
  if (gate.allowEmpty) {
    io.stderr(
      `handoff-broker serve: warning: ${error.message}\n${others.join('')}` +
        `handoff-broker serve: starting anyway (--allow-empty) with ${load.services.length} service definition(s)\n`,
    );
    return null;
  }
  if (gate.json) {
    const { ok: _ok, code, message, ...where } = error.toJSON();
    io.stdout(jsonFailure(error.code, error.message, { command: 'serve', ...where }));
  }
  io.stderr(
    `handoff-broker serve: refusing to start: ${error.message}\n${others.join('')}` +
      'handoff-broker serve: fix the configuration, or pass --allow-empty to start without it\n',
  );
  return error;
}
