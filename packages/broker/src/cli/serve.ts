// `handoff-broker serve`: run the broker in the foreground until SIGINT,
// SIGTERM or an admin SHUTDOWN. The server itself is startBroker
// (src/broker-launch.ts, src/broker-server.ts); this turns flags into its options and makes sure
// the process ends: a hard deadline after the drain, and a second signal.
// Under systemd it adopts the inherited listener and notifies the manager
// (src/systemd/).
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { type Command, EXIT_FAILED, EXIT_OK, type ParsedArgs } from '@handoff/backend-sdk/cli';
import { defaultConfigDir, defaultStateDir } from '../paths.js';
import { RP_COMPAT_HELP, rpCompatFromArgs, rpCompatOptions } from '../rp-compat/serve-option.js';
import type { InheritedFd } from '../systemd/listen-fds.js';
import {
  brokerSocketPath,
  integerOption,
  SOCKET_HELP,
  socketOption,
  stringOption,
} from './command.js';
import type { CliIo } from './output.js';
import { CONFIG_GATE_HELP, configGateOptions, gateServeConfig } from './serve-config.js';
import { serveDiagnostics } from './serve-diagnostics.js';
import {
  LOG_FORMAT_HELP,
  logFormatOptions,
  serveFailed,
  serveLogger,
  serveStarted,
} from './serve-log.js';
import { RAILS_HELP, railsFromArgs, railsOptions, rootRefusal } from './serve-rails.js';

/**
 * How long past its drain deadline a closing broker may take before the
 * process exits anyway (README, "CLI"): room for daemons to stop (SIGTERM,
 * then SIGKILL after their stopGraceMs) and for the last writes to flush.
 */
export const EXIT_GRACE_MS = 10_000;

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the broker in the foreground',
  usage:
    'serve [--config-dir DIR] [--config-file FILE] [--drain MS] [--socket PATH] [--state-dir DIR]' +
    ' [--allow-root] [--hello-rate N] [--hello-burst N]' +
    ' [--allow-empty] [--json]' +
    ' [--log-format F]' +
    ' [--rp-compat]',
  help: [
    '--config-dir DIR    a directory of service definition files (reloaded on change;',
    '                    default, without --config-file: $HANDOFF_CONFIG_DIR or ~/.config/handoff/services)',
    '--config-file FILE  one service definition file (reloaded on change)',
    '--drain MS          on SIGINT/SIGTERM, how long in-flight work may drain (default 5000);',
    '                    the process exits at the latest 10 s after that, a second signal at once',
    SOCKET_HELP,
    '--state-dir DIR     where daemon logs are written, under DIR/logs (default: $XDG_STATE_HOME/handoff',
    '                    or ~/.local/state/handoff)',
    ...RAILS_HELP,
    ...CONFIG_GATE_HELP,
    ...RP_COMPAT_HELP,
    ...LOG_FORMAT_HELP,
  ],
  options: {
    ...socketOption,
    'config-dir': { type: 'string' },
    'config-file': { type: 'string' },
    drain: { type: 'string' },
    'state-dir': { type: 'string' },
    ...railsOptions,
    ...configGateOptions,
    ...rpCompatOptions,
    ...logFormatOptions,
  },
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    const socketPath = brokerSocketPath(args, io.env);
    const configFile = stringOption(args, 'config-file');
    const configDir =
      stringOption(args, 'config-dir') ??
      (configFile === undefined ? defaultConfigDir(io.env) : undefined);
    const drainMs = integerOption(args, 'drain', 5000, 'serve');
    const stateDir = resolve(stringOption(args, 'state-dir') ?? defaultStateDir(io.env));
    const diagnostics = serveDiagnostics(args, io, stateDir);
    const rails = railsFromArgs(args, io);
    const json = args.values.json === true;
    const logger = serveLogger(args, io);
    // Root is refused before anything else is looked at (src/root-refusal.ts).
    const asRoot = rootRefusal(rails, io.env);
    if (asRoot !== null) {
      serveFailed(
        io,
        json,
        asRoot.code,
        `cannot start the broker at ${socketPath}: ${asRoot.message}`,
      );
      return EXIT_FAILED;
    }
    // Loaded here, not at the top: the other commands should not pay for
    // the server, its logger and the native addon.
    const { killBackendsNow, startBroker, startSuccessorBroker } = await import(
      '../broker-launch.js'
    );
    const { closeUnused, parseListenFds, pickBrokerFd, unsetListenEnv } = await import(
      '../systemd/listen-fds.js'
    );
    const { SystemdNotifier } = await import('../systemd/notify.js');
    const upgrades = await import('../upgrade/serve-upgrade.js');
    const { UpgradeTakeover } = await import('../upgrade/takeover.js');
    // An upgrade's successor (src/upgrade/): it takes over instead of binding.
    let takeover: import('../upgrade/takeover.js').UpgradeTakeover | null;
    try {
      takeover = UpgradeTakeover.fromEnv(io.env);
    } catch (error) {
      serveFailed(io, json, codeOf(error, 'UPGRADE_TAKEOVER'), (error as Error).message);
      return EXIT_FAILED;
    }
    // Socket activation: a listener systemd (or any manager) bound for us.
    // The variables go either way, so that no daemon we spawn inherits them.
    let listenFd: number | undefined;
    try {
      const inherited: InheritedFd[] | null = parseListenFds(io.env, process.pid);
      unsetListenEnv(io.env);
      if (inherited !== null && inherited.length > 0) {
        const chosen = pickBrokerFd(inherited);
        closeUnused(inherited, chosen);
        listenFd = chosen.fd;
      }
    } catch (error) {
      unsetListenEnv(io.env);
      const why = `socket activation: ${(error as Error).message}`;
      serveFailed(io, json, codeOf(error, 'SOCKET_ACTIVATION'), why);
      return EXIT_FAILED;
    }
    const notifier = SystemdNotifier.fromEnv(io.env, {
      onError: (error) =>
        io.stderr(
          `handoff-broker serve: cannot notify the service manager (NOTIFY_SOCKET): ${error.message}\n`,
        ),
    });
    // A missing or broken configuration stops the start here (src/cli/serve-config.ts);
    // a successor's refusal fails the upgrade, and the old broker keeps serving.
    const refused = await gateServeConfig(
      {
        dir: configDir,
        file: configFile,
        dirIsDefault: configDir !== undefined && stringOption(args, 'config-dir') === undefined,
        allowEmpty: args.values['allow-empty'] === true,
        json,
      },
      io,
    );
    if (refused !== null) {
      if (takeover !== null) upgrades.abandonTakeover(takeover, refused, io);
      return EXIT_FAILED;
    }
    let broker: Awaited<ReturnType<typeof startBroker>>;
    try {
      const options = {
        socketPath,
        stateDir,
        ...diagnostics.options,
        successor: upgrades.successorCommand(io.env, notifier),
        logger,
        ...rails,
        ...rpCompatFromArgs(args, io.env),
        ...(listenFd === undefined ? {} : { listenFd }),
        ...(configDir === undefined ? {} : { configDir }),
        ...(configFile === undefined ? {} : { configFile }),
      };
      broker = await (takeover === null
        ? startBroker(options)
        : startSuccessorBroker(options, takeover));
    } catch (error) {
      // A successor that cannot take over says why, and goes: the old broker keeps serving.
      if (takeover !== null) upgrades.abandonTakeover(takeover, error, io);
      const code = (error as { code?: unknown }).code;
      // Refusals the user can fix (unsafe directory, address in use) carry a code and a clear message.
      if (typeof code === 'string') {
        const why = `cannot start the broker at ${socketPath}: ${(error as Error).message}`;
        serveFailed(io, json, code, why);
        return EXIT_FAILED;
      }
      throw error;
    }
    const live = broker;
    diagnostics.serving(live);
    serveStarted(io, json, { socketPath: live.socketPath, services: live.definitions().length });
    const serving = () => `serving ${live.definitions().length} services at ${live.socketPath}`;
    if (takeover === null) notifier.ready(serving());
    else notifier.readyAsMain(serving());
    notifier.startWatchdog();
    upgrades.serveUpgrades(live, notifier, serving, io);
    live.on('config', () => notifier.status(serving()));
    // Last resort: whatever close() waits for (or whatever handle outlives
    // it), the process ends; its daemons are killed rather than orphaned.
    const giveUp = (why: string, code: number): never => {
      const open = live.openWork();
      io.stderr(
        `handoff-broker serve: ${why}; exiting anyway. Still open: ${open.clients} client connection(s), ` +
          `${open.channels} control channel(s), backends [${open.backends.join(', ')}], ` +
          `handles [${process.getActiveResourcesInfo().join(', ')}]\n`,
      );
      killBackendsNow(live);
      process.exit(code);
    };
    // Armed when closing starts, however it starts (signal or admin
    // SHUTDOWN); unref'd and never cleared, so it fires only if the process
    // is still alive then.
    live.once('closing', (deadlineMs: number) => {
      notifier.stopping(`draining for up to ${deadlineMs} ms`);
      notifier.close();
      const hardMs = deadlineMs + EXIT_GRACE_MS;
      setTimeout(
        () => giveUp(`shutdown did not finish within ${hardMs} ms`, EXIT_FAILED),
        hardMs,
      ).unref();
    });
    await new Promise<void>((resolve) => {
      let signalled = false;
      const onSignal = (name: NodeJS.Signals) => {
        if (signalled) giveUp(`second ${name}`, 128 + constants.signals[name]);
        signalled = true;
        live.close({ deadlineMs: drainMs }).then(resolve, (error: Error) => {
          io.stderr(`handoff-broker serve: close failed: ${error.message}\n`);
          resolve();
        });
      };
      // Kept after close: a second signal while something lingers still
      // means "now". (Signal listeners do not keep the event loop alive.)
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      // An admin SHUTDOWN closes the broker from inside.
      live.once('close', () => resolve());
    });
    return EXIT_OK;
  },
};

/** An error's own code, else `fallback`. */
function codeOf(error: unknown, fallback: string): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : fallback;
}
