// Public surface of @handoff/backend-sdk/cli: the command-line runner the
// handoff-broker CLI and every daemon's client CLI share.
export {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  HELP_LINE,
  HELP_OPTION,
  type OptionSpecs,
  type ParsedArgs,
  parseCommandArgs,
  UsageError,
  type UsageErrorCode,
} from './command.js';
export { type CliIo, columns, withNewline } from './output.js';
export { type CliProgram, CliRunner } from './runner.js';
