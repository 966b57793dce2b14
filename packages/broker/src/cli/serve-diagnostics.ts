// What `serve` adds for diagnostics after the fact: the event journal it
// hands the broker (and closes after it), crash reports installed before
// anything can throw, and where each setting came from (flag, env,
// default) for DUMP. Also the test-only crash hook (src/crash-report.ts).
import type { ParsedArgs } from '@handoff/backend-sdk/cli';
import type { ConfigOrigin } from '../admin-diagnostics.js';
import type { Broker } from '../broker-api.js';
import { crashIfTestAsks, installBrokerCrashReports } from '../crash-report.js';
import { EventJournal } from '../events/journal.js';
import type { CliIo } from './output.js';

export interface ServeDiagnostics {
  /** Spread into the broker's options. */
  options: { journal: EventJournal; configOrigins: Record<string, ConfigOrigin> };
  /** Once the broker serves: the journal closes after it. */
  serving(broker: Broker): void;
}

export function serveDiagnostics(args: ParsedArgs, io: CliIo, stateDir: string): ServeDiagnostics {
  const journal = new EventJournal({
    stateDir,
    onTrouble: (level, message, fields) =>
      io.stderr(`handoff-broker serve: ${level}: ${message} ${JSON.stringify(fields)}\n`),
  });
  installBrokerCrashReports(stateDir, () => journal);
  return {
    options: { journal, configOrigins: configOrigins(args, io.env) },
    serving(broker) {
      broker.once('close', () => void journal.close());
      crashIfTestAsks(io.env);
    },
  };
}

/** How serve chose what DUMP reports (the broker cannot tell a flag from a default). */
function configOrigins(args: ParsedArgs, env: NodeJS.ProcessEnv): Record<string, ConfigOrigin> {
  const flag = (name: string) => typeof args.values[name] === 'string' && args.values[name] !== '';
  const origins: Record<string, ConfigOrigin> = {};
  const set = (key: string, origin: ConfigOrigin) => {
    origins[key] = origin;
  };
  if (flag('socket'))
    set('socket_path', { value: args.values.socket, source: 'flag', detail: '--socket' });
  else if (env.HANDOFF_BROKER_SOCKET)
    set('socket_path', {
      value: env.HANDOFF_BROKER_SOCKET,
      source: 'env',
      detail: 'HANDOFF_BROKER_SOCKET',
    });
  else set('socket_path', { value: null, source: 'default' });
  set(
    'state_dir',
    flag('state-dir')
      ? { value: args.values['state-dir'], source: 'flag', detail: '--state-dir' }
      : env.XDG_STATE_HOME
        ? { value: null, source: 'env', detail: 'XDG_STATE_HOME' }
        : { value: null, source: 'default' },
  );
  if (flag('config-dir'))
    set('config_dir', { value: args.values['config-dir'], source: 'flag', detail: '--config-dir' });
  else if (!flag('config-file'))
    set(
      'config_dir',
      env.HANDOFF_CONFIG_DIR
        ? { value: env.HANDOFF_CONFIG_DIR, source: 'env', detail: 'HANDOFF_CONFIG_DIR' }
        : { value: null, source: 'default' },
    );
  if (flag('config-file'))
    set('config_file', {
      value: args.values['config-file'],
      source: 'flag',
      detail: '--config-file',
    });
  set(
    'drain_ms',
    flag('drain')
      ? { value: Number(args.values.drain), source: 'flag', detail: '--drain' }
      : { value: 5000, source: 'default' },
  );
  return origins;
}
