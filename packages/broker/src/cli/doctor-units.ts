// `doctor`'s systemd line: whether the service unit `install --systemd`
// wrote still starts a broker. The unit names node and the CLI entry by
// absolute path, so moving either breaks it silently until the next login;
// and a unit from an earlier install lacks the node flags install writes
// now (BROKER_NODE_FLAGS). No unit file: no line (not everyone uses systemd).
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BROKER_NODE_FLAGS, execWords, SERVICE_UNIT } from '../systemd/units.js';
import type { CheckLine } from './output.js';

const NAME = 'systemd unit';
const REINSTALL = 'rerun `handoff-broker install --systemd --force`';

export function systemdUnitChecks(unitDir: string): CheckLine[] {
  const path = join(unitDir, SERVICE_UNIT);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    return [line('FAIL', `cannot read ${path}: ${(error as Error).message}`)];
  }
  // A drop-in can replace ExecStart=; doctor reads the file install wrote.
  const dropIns = existsSync(`${path}.d`) ? ` (drop-ins in ${path}.d not read)` : '';
  const execStart = text
    .split('\n')
    .filter((l) => l.startsWith('ExecStart='))
    .at(-1);
  const words = execStart === undefined ? null : execWords(execStart.slice('ExecStart='.length));
  if (words === null || words.length < 2)
    return [line('FAIL', `${path} has no ExecStart= line doctor can read${dropIns}; ${REINSTALL}`)];
  const [node, ...rest] = words as [string, ...string[]];
  // Node's own flags come before the script, which is the first other word.
  const entryAt = rest.findIndex((w) => !w.startsWith('-'));
  const flags = entryAt < 0 ? rest : rest.slice(0, entryAt);
  const entry = entryAt < 0 ? undefined : rest[entryAt];
  if (!isExecutableFile(node))
    return [line('FAIL', `${path} runs ${node}, which is not an executable file; ${REINSTALL}`)];
  if (entry === undefined || !isFile(entry))
    return [
      line('FAIL', `${path} runs the CLI at ${entry ?? '(none)'}, which is gone; ${REINSTALL}`),
    ];
  const missing = BROKER_NODE_FLAGS.filter((flag) => !flags.includes(flag));
  if (missing.length > 0)
    return [
      line(
        'WARN',
        `${path} starts node without ${missing.join(' ')} (written by an earlier install)${dropIns}; ${REINSTALL}`,
      ),
    ];
  return [line('PASS', `${path} runs ${node} ${[...flags, entry].join(' ')}${dropIns}`)];
}

function line(verdict: CheckLine['verdict'], detail: string): CheckLine {
  return { name: NAME, verdict, detail };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isExecutableFile(path: string): boolean {
  if (!isFile(path)) return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
