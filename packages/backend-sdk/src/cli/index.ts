// Public surface of @handoff/backend-sdk/cli: the command-line runner the
// handoff-broker CLI and every daemon's client CLI share.
export {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  HELP_LINE,
  HELP_OPTION,
  type HelpLine,
  type OptionHelp,
  type OptionSpecs,
  type ParsedArgs,
  parseCommandArgs,
  UsageError,
  type UsageErrorCode,
} from './command.js';
export { HELP_ENTRY, renderHelp, undocumentedOptions } from './help.js';
export {
  CLI_JSON_SCHEMA_VERSION,
  type CliIo,
  columns,
  jsonFailure,
  wantsJson,
  withNewline,
} from './output.js';
export { type CliProgram, CliRunner, UNEXPECTED_CODE } from './runner.js';
