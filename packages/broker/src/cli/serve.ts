// `handoff-broker serve`: run the broker in the foreground until SIGINT,
// SIGTERM or an admin SHUTDOWN. The server itself is startBroker
// (src/broker-server.ts); this only turns flags into its options.
import { defaultConfigDir } from '../paths.js';
import {
  brokerSocketPath,
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  integerOption,
  type ParsedArgs,
  SOCKET_HELP,
  socketOption,
  stringOption,
} from './command.js';
import type { CliIo } from './output.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the broker in the foreground',
  usage: 'serve [--config-dir DIR] [--config-file FILE] [--drain MS] [--socket PATH]',
  help: [
    '--config-dir DIR    a directory of service definition files (reloaded on change;',
    '                    default, without --config-file: $HANDOFF_CONFIG_DIR or ~/.config/handoff/services)',
    '--config-file FILE  one service definition file (reloaded on change)',
    '--drain MS          on SIGINT/SIGTERM, how long in-flight work may drain (default 5000)',
    SOCKET_HELP,
  ].join('\n'),
  options: {
    ...socketOption,
    'config-dir': { type: 'string' },
    'config-file': { type: 'string' },
    drain: { type: 'string' },
  },
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    const socketPath = brokerSocketPath(args, io.env);
    const configFile = stringOption(args, 'config-file');
    const configDir =
      stringOption(args, 'config-dir') ??
      (configFile === undefined ? defaultConfigDir(io.env) : undefined);
    const drainMs = integerOption(args, 'drain', 5000, 'serve');
    // Loaded here, not at the top: the other commands should not pay for
    // the server, its logger and the native addon.
    const { startBroker } = await import('../broker-server.js');
    let broker: Awaited<ReturnType<typeof startBroker>>;
    try {
      broker = await startBroker({
        socketPath,
        ...(configDir === undefined ? {} : { configDir }),
        ...(configFile === undefined ? {} : { configFile }),
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      // Refusals the user can fix (unsafe directory, address in use) carry a code and a clear message.
      if (typeof code === 'string') {
        io.stderr(
          `handoff-broker: cannot start the broker at ${socketPath}: ${(error as Error).message}\n`,
        );
        return EXIT_FAILED;
      }
      throw error;
    }
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        broker.close({ deadlineMs: drainMs }).then(resolve, resolve);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // An admin SHUTDOWN closes the broker from inside.
      broker.once('close', () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      });
    });
    return EXIT_OK;
  },
};
