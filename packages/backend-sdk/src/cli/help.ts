// The options block of a usage text: one row per option (its flags, what it
// does, continuation lines), aligned by computed widths so that no command
// hand-pads; and the check that every option a command declares is named in it.
import type { Command, HelpLine, OptionHelp, OptionSpecs } from './command.js';
import { columns } from './output.js';

export const HELP_ENTRY: OptionHelp = ['-h, --help', 'show this help'];

function rowsOf(line: HelpLine): string[][] {
  if (typeof line !== 'string') {
    const [flags, text, ...more] = line;
    return [[flags, text], ...more.map((m) => ['', m])];
  }
  const continuation = /^\s+(\S.*)$/.exec(line);
  if (continuation) return [['', continuation[1]!]];
  const split = /^(\S(?:.*?\S)?) {2,}(\S.*)$/.exec(line);
  if (split) return [[split[1]!, split[2]!]];
  return [[line]];
}

/** The options block, each line indented two spaces, the text column aligned. */
export function renderHelp(lines: readonly HelpLine[]): string {
  return columns(lines.flatMap(rowsOf).map((row) => ['', ...row]));
}

/**
 * The options of `command` (and the program's `common` ones) that its help
 * text does not name: what a test asserts is empty. An option is named by
 * `--name`, or by `-x` when it has a short form.
 */
export function undocumentedOptions(
  command: Command,
  helpText: string,
  common: OptionSpecs = {},
): string[] {
  const named = (flag: string) =>
    new RegExp(`(^|[\\s,\\[])${flag.replace(/[-]/g, '\\-')}(?=$|[\\s,=\\]])`, 'm').test(helpText);
  return Object.entries({ ...command.options, ...common })
    .filter(([name, spec]) => !named(`--${name}`) && !(spec.short && named(`-${spec.short}`)))
    .map(([name]) => `--${name}`);
}
