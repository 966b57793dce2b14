// Whether a named service is running, defined but not running (it starts on
// demand at the first connect), or unknown (no definition): the words, codes
// and JSON that LIST_INSTANCES, STATUS and `probe` share, so the three
// never blur "unknown" and "stopped" again. The facts come from AdminProvider.

export type ServicePresence = 'running' | 'not_running' | 'unknown';

/** No definition of that name is loaded: nothing would start it. */
export const SERVICE_UNKNOWN = 'SERVICE_UNKNOWN';
/** Defined but no daemon runs: the first client connect starts one. */
export const NOT_RUNNING = 'NOT_RUNNING';

export interface ServiceState {
  service: string;
  /** A definition of this name is loaded. */
  defined: boolean;
  /** Daemons of it the broker knows (any version, any state). */
  running: number;
}

export function presenceOf(state: ServiceState): ServicePresence {
  if (state.running > 0) return 'running';
  return state.defined ? 'not_running' : 'unknown';
}

export function presenceMessage(service: string, presence: ServicePresence): string {
  switch (presence) {
    case 'running':
      return `${service} is running`;
    case 'not_running':
      return `${service} is defined but not running; it starts on demand on the first connect`;
    case 'unknown':
      return `no service named ${service} is defined (check its definition file, or \`handoff-broker status\` for what is loaded)`;
  }
}

/** Every defined service, then any running one whose definition is gone, by name. */
export function serviceStates(
  defined: readonly string[],
  runningServices: readonly string[],
): ServiceState[] {
  const names = [...new Set([...defined, ...runningServices])].sort();
  const known = new Set(defined);
  return names.map((service) => ({
    service,
    defined: known.has(service),
    running: runningServices.filter((s) => s === service).length,
  }));
}

export function serviceStatesJson(states: readonly ServiceState[] | undefined): {
  service_states?: { service: string; defined: boolean; running: number; state: string }[];
} {
  if (states === undefined) return {};
  return {
    service_states: states.map((s) => ({
      service: s.service,
      defined: s.defined,
      running: s.running,
      state: presenceOf(s),
    })),
  };
}

/** The STATUS text row: "demo-kv running (1 daemon); search not running (starts on demand …)". */
export function serviceStatesRows(states: readonly ServiceState[] | undefined): [string, string][] {
  if (states === undefined) return [];
  const words = states.map((s) => {
    const presence = presenceOf(s);
    if (presence === 'running') {
      const gone = s.defined ? '' : ', definition removed';
      return `${s.service} running (${s.running} daemon${s.running === 1 ? '' : 's'}${gone})`;
    }
    return presence === 'not_running'
      ? `${s.service} not running (starts on demand on the first connect)`
      : `${s.service} unknown`;
  });
  return [['service states', words.length === 0 ? 'none defined' : words.join('; ')]];
}

/** LIST_INSTANCES of a named service with no daemon: not running (ok) or unknown (a failure). */
export function presenceReplyFields(
  service: string,
  defined: readonly string[],
): { ok: boolean; code: string; message: string; service: string; defined: boolean } {
  const isDefined = defined.includes(service);
  const presence: ServicePresence = isDefined ? 'not_running' : 'unknown';
  return {
    ok: isDefined,
    code: isDefined ? NOT_RUNNING : SERVICE_UNKNOWN,
    message: presenceMessage(service, presence),
    service,
    defined: isDefined,
  };
}
