// The CLI contract's table: one row per handoff-broker subcommand, saying how
// to make it succeed and fail under --json. contract.int.test.ts runs every
// row against the real CLI; a command in cli/run.ts without a row fails it.
// To add a command: add its row here (placeholders are filled by the test).
//   {live}     the socket of a live test broker (service `echo` defined and running)
//   {spare}    the socket of a second live broker, for commands that stop it
//   {dead}     a socket path nothing listens on
//   {tmp}      a fresh temp dir for files a command writes
//   {state}    a state dir holding one log line of `echo` and one journal event

export interface ContractRow {
  command: string;
  /** A --json success (one document, ok: true, exit 0), or why none is run here. */
  success: readonly string[] | { skip: string };
  /** A --json failure (one document, ok: false, code, message). */
  failure: { argv: readonly string[]; exit: 1 | 2; code: string };
}

export const CONTRACT_ROWS: ContractRow[] = [
  {
    command: 'serve',
    success: { skip: 'runs in the foreground: serve --json is tested in logs-stderr.int.test.ts' },
    failure: { argv: ['serve', '--json', '--log-format', 'loud'], exit: 2, code: 'USAGE' },
  },
  {
    command: 'status',
    success: ['status', '--json', '--socket', '{live}'],
    failure: { argv: ['status', '--json', '--socket', '{dead}'], exit: 1, code: 'CONNECT' },
  },
  {
    command: 'list',
    success: ['list', 'echo', '--json', '--socket', '{live}'],
    failure: {
      argv: ['list', 'no-such-service', '--json', '--socket', '{live}'],
      exit: 1,
      code: 'SERVICE_UNKNOWN',
    },
  },
  {
    command: 'probe',
    success: ['probe', 'echo', '--json', '--socket', '{live}'],
    failure: {
      argv: ['probe', 'no-such-service', '--json', '--socket', '{live}'],
      exit: 1,
      code: 'SERVICE_UNKNOWN',
    },
  },
  {
    command: 'healthz',
    success: ['healthz', '--json', '--socket', '{live}'],
    failure: { argv: ['healthz', '--json', '--socket', '{dead}'], exit: 1, code: 'CONNECT' },
  },
  {
    command: 'metrics',
    success: ['metrics', '--json', '--socket', '{live}'],
    failure: { argv: ['metrics', '--json', '--socket', '{dead}'], exit: 1, code: 'CONNECT' },
  },
  {
    command: 'doctor',
    success: ['doctor', '--json', '--socket', '{live}'],
    failure: { argv: ['doctor', '--json', '--socket', '{dead}'], exit: 1, code: 'CHECK_FAILED' },
  },
  {
    command: 'shutdown',
    success: ['shutdown', '--json', '--deadline', '500', '--socket', '{spare}'],
    failure: {
      argv: ['shutdown', '--json', '--deadline', 'soon', '--socket', '{live}'],
      exit: 2,
      code: 'USAGE',
    },
  },
  {
    command: 'install',
    success: [
      'install',
      '--systemd',
      '--json',
      '--dir',
      '{tmp}/units',
      '--config-dir',
      '{tmp}/services',
    ],
    failure: { argv: ['install', '--json'], exit: 2, code: 'USAGE' },
  },
  {
    command: 'upgrade',
    success: { skip: 'replaces the broker process: upgrade.int.test.ts' },
    failure: { argv: ['upgrade', '--json', '--socket', '{dead}'], exit: 1, code: 'CONNECT' },
  },
  {
    command: 'logs',
    success: ['logs', 'echo', '--json', '--state-dir', '{state}'],
    failure: {
      argv: ['logs', 'no-such-service', '--json', '--state-dir', '{tmp}'],
      exit: 1,
      code: 'NO_LOGS',
    },
  },
  {
    command: 'restart',
    success: ['restart', 'echo', '--json', '--drain', '1000', '--socket', '{live}'],
    failure: {
      argv: ['restart', 'echo', '--json', '--socket', '{dead}'],
      exit: 1,
      code: 'CONNECT',
    },
  },
  {
    command: 'events',
    success: ['events', '--json', '--state-dir', '{state}'],
    failure: { argv: ['events', '--json', '--state-dir', '{tmp}'], exit: 1, code: 'NO_EVENTS' },
  },
  {
    command: 'dump',
    success: ['dump', '--json', '--socket', '{live}'],
    failure: { argv: ['dump', '--json', '--socket', '{dead}'], exit: 1, code: 'CONNECT' },
  },
  {
    command: 'diagnose',
    success: ['diagnose', 'echo', '--json', '--socket', '{live}'],
    failure: {
      argv: ['diagnose', 'no-such-service', '--json', '--socket', '{live}'],
      exit: 1,
      code: 'SERVICE_UNKNOWN',
    },
  },
  {
    command: 'top',
    success: ['top', '--once', '--json', '--interval', '0', '--socket', '{live}'],
    failure: { argv: ['top', '--json', '--socket', '{dead}'], exit: 1, code: 'CONNECT' },
  },
];
