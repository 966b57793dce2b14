// `handoff-broker probe <service|endpoint>`: challenge a daemon with an
// identity probe and show, check by check, what the prober verified. A
// service name is resolved to its endpoints by asking the broker
// (LIST_INSTANCES); a path (anything with a `/`) is probed directly.
import { type ExpectedIdentity, ProbeError, probeDaemon } from '@handoff/backend-sdk';
import {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  jsonFailure,
  type ParsedArgs,
  UsageError,
} from '@handoff/backend-sdk/cli';
import {
  AdminReplyKind,
  AdminVerb,
  type DaemonProcess,
  validateServiceName,
} from '@handoff/protocol';
import { AdminClientError, adminRequest } from '../client/admin-client.js';
import { NOT_RUNNING } from '../service-presence.js';
import {
  brokerSocketPath,
  integerOption,
  JSON_HELP,
  jsonOption,
  SOCKET_HELP,
  socketOption,
} from './command.js';
import {
  type CheckLine,
  type CliIo,
  checkLines,
  columns,
  isAdminClientError,
  reportAdminError,
} from './output.js';

/**
 * The prober's checks in the order it makes them. It stops at the first
 * failure, so every check before the failing one passed and every check
 * after it was not made.
 */
const CHECKS = [
  { name: 'connect', detail: 'the endpoint accepts a connection', codes: ['CONNECT'] },
  {
    name: 'answer',
    detail: 'a RESPONSE frame on 0xB232 echoing our request id, in time',
    codes: ['TIMEOUT', 'CLOSED', 'UNEXPECTED_FRAME'],
  },
  { name: 'nonce', detail: 'our 32-byte nonce is echoed', codes: ['NONCE_MISMATCH'] },
  {
    name: 'identity',
    detail: 'a DaemonProcess with an endpoint and a 32-byte blake3 hash',
    codes: ['MALFORMED_PAYLOAD'],
  },
  { name: 'endpoint', detail: 'it claims the endpoint we probed', codes: ['ENDPOINT_MISMATCH'] },
  {
    name: 'expected',
    detail: 'pid, executable and boot id are what we expect',
    codes: ['IDENTITY_MISMATCH'],
  },
  {
    name: 'peer',
    detail: 'the kernel (SO_PEERCRED) names the claimed pid and the expected uid',
    codes: ['PEER_CREDENTIALS'],
  },
  {
    name: 'start time',
    detail: 'the claimed start time matches /proc (no recycled pid)',
    codes: ['START_TIME'],
  },
] as const;

export interface ProbeReport {
  endpoint: string;
  ok: boolean;
  checks: CheckLine[];
  identity: DaemonProcess | null;
  peer: { pid: number; uid: number; gid: number } | null;
  roundTripMs: number;
  error: { code: string; field: string | null; message: string } | null;
}

export async function probeEndpoint(
  endpoint: string,
  expected: ExpectedIdentity,
  timeoutMs: number,
): Promise<ProbeReport> {
  const started = performance.now();
  try {
    const verified = await probeDaemon(endpoint, expected, { timeoutMs });
    return {
      endpoint,
      ok: true,
      checks: CHECKS.map((c) => ({ name: c.name, verdict: 'PASS', detail: c.detail })),
      identity: verified.identity,
      peer: verified.peer,
      roundTripMs: verified.roundTripMs,
      error: null,
    };
  } catch (error) {
    if (!(error instanceof ProbeError)) throw error;
    const failed = CHECKS.findIndex((c) => (c.codes as readonly string[]).includes(error.code));
    return {
      endpoint,
      ok: false,
      checks: CHECKS.map((c, i) => {
        if (i < failed) return { name: c.name, verdict: 'PASS', detail: c.detail };
        if (i === failed) return { name: c.name, verdict: 'FAIL', detail: error.message };
        return { name: c.name, verdict: 'SKIP', detail: 'not checked' };
      }),
      identity: null,
      peer: null,
      roundTripMs: performance.now() - started,
      error: { code: error.code, field: error.field ?? null, message: error.message },
    };
  }
}

interface BrokerInstance {
  service: string;
  endpoint: string;
  pid: number | null;
}

/**
 * The endpoints the broker knows for `service`, from its LIST_INSTANCES
 * JSON, and — when it has none — why: the broker's code (SERVICE_UNKNOWN,
 * NOT_RUNNING) and words, or null from a broker that cannot tell.
 */
async function endpointsOf(
  service: string,
  socketPath: string,
  timeoutMs: number,
): Promise<{ instances: BrokerInstance[]; why: { code: string; message: string } | null }> {
  const reply = await adminRequest(
    socketPath,
    { verb: AdminVerb.LIST_INSTANCES, json: true, serviceName: service },
    { timeoutMs },
  );
  if (reply.kind !== AdminReplyKind.JSON) {
    const message = `the broker answered LIST_INSTANCES with kind ${reply.kind}, not JSON`;
    throw new AdminClientError('PROTOCOL', socketPath, message);
  }
  const body = JSON.parse(reply.body) as {
    instances?: BrokerInstance[];
    code?: string;
    message?: string;
  };
  const instances = (body.instances ?? []).filter((i) => i.service === service);
  const why =
    typeof body.code === 'string' && typeof body.message === 'string'
      ? { code: body.code, message: body.message }
      : null;
  return { instances, why };
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

function reportJson(report: ProbeReport): Record<string, unknown> {
  const id = report.identity;
  return {
    endpoint: report.endpoint,
    ok: report.ok,
    checks: report.checks,
    identity: id && {
      pid: id.pid,
      exe_path: id.exePath,
      exe_hash_algorithm: id.exeHashAlgorithm,
      exe_hash: hex(id.exeHash),
      boot_id: id.bootId,
      ipc_endpoint: id.ipcEndpoint?.path ?? null,
      started_at_unix_ms: Number(id.startedAtUnixMs),
      idle_timeout_secs: id.idleTimeoutSecs ?? null,
      entry_script_path: id.entryScriptPath,
    },
    peer: report.peer,
    round_trip_ms: report.roundTripMs,
    error: report.error,
  };
}

function reportText(report: ProbeReport): string {
  let out = `probe ${report.endpoint}\n`;
  const id = report.identity;
  if (id && report.peer) {
    out += columns([
      ['  pid', String(id.pid)],
      ['  executable', id.exePath],
      ['  exe hash', `${id.exeHashAlgorithm}:${hex(id.exeHash)}`],
      ...(id.entryScriptPath ? [['  entry script', id.entryScriptPath]] : []),
      ['  boot id', id.bootId],
      ['  started', new Date(Number(id.startedAtUnixMs)).toISOString()],
      ['  peer', `pid ${report.peer.pid}, uid ${report.peer.uid}, gid ${report.peer.gid}`],
    ]);
  }
  out += checkLines(report.checks)
    .split('\n')
    .map((line) => (line ? `  ${line}` : line))
    .join('\n');
  out += `  round trip ${report.roundTripMs.toFixed(2)} ms${report.ok ? '' : ' (until the failure)'}\n`;
  return out;
}

export const probeCommand: Command = {
  name: 'probe',
  summary: 'verify a daemon’s identity (exit 1 when a check fails)',
  usage: 'probe <SERVICE|ENDPOINT> [--uid N] [--pid N] [--timeout MS] [--json] [--socket PATH]',
  help: [
    [
      'SERVICE',
      'ask the broker for the endpoints of this service and probe each; exit 1 with',
      'SERVICE_UNKNOWN (no such definition) or NOT_RUNNING (defined, starts on demand)',
    ],
    ['ENDPOINT', 'a daemon socket path (anything containing "/") — probed directly'],
    ['--uid N', 'the uid the daemon must run as (default: ours)'],
    ['--pid N', 'the pid the daemon must have'],
    [
      '--timeout MS',
      'deadline for each probe (default 500, as the reference); asking the broker, at least 5000',
    ],
    JSON_HELP,
    SOCKET_HELP,
  ],
  options: {
    ...socketOption,
    ...jsonOption,
    uid: { type: 'string' },
    pid: { type: 'string' },
    timeout: { type: 'string' },
  },
  minPositionals: 1,
  maxPositionals: 1,
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    const target = args.positionals[0]!;
    const json = args.values.json === true;
    const timeoutMs = integerOption(args, 'timeout', 500, 'probe');
    const expected: ExpectedIdentity = {};
    if (args.values.uid !== undefined) expected.uid = integerOption(args, 'uid', 0, 'probe');
    if (args.values.pid !== undefined) expected.pid = integerOption(args, 'pid', 0, 'probe');

    let targets: { endpoint: string; pid: number | null }[];
    if (target.includes('/')) {
      targets = [{ endpoint: target, pid: null }];
    } else {
      const verdict = validateServiceName(target);
      if (!verdict.ok)
        throw new UsageError(
          `${JSON.stringify(target)} is neither a service name nor a path: ${verdict.reason}`,
          'probe',
        );
      const socketPath = brokerSocketPath(args, io.env);
      let found: Awaited<ReturnType<typeof endpointsOf>>;
      try {
        found = await endpointsOf(target, socketPath, Math.max(timeoutMs, 5000));
      } catch (error) {
        if (!isAdminClientError(error)) throw error;
        return reportAdminError(io, json, error);
      }
      targets = found.instances;
      if (targets.length === 0) {
        // Nothing to probe: unknown, or defined and not started yet — both exit 1.
        const why = found.why ?? {
          code: NOT_RUNNING,
          message: `the broker has no running instance of ${target}`,
        };
        if (json) io.stdout(jsonFailure(why.code, why.message, { target, probes: [] }));
        io.stderr(`handoff-broker: ${why.message}\n`);
        return EXIT_FAILED;
      }
    }

    const reports: ProbeReport[] = [];
    for (const t of targets) {
      // What the broker recorded is what the daemon must still be.
      const want =
        t.pid !== null && expected.pid === undefined ? { ...expected, pid: t.pid } : expected;
      reports.push(await probeEndpoint(t.endpoint, want, timeoutMs));
    }
    const ok = reports.every((r) => r.ok);
    if (json) {
      const failed = reports.find((r) => !r.ok)?.error;
      const verdict = failed ? { code: failed.code, message: failed.message } : {};
      io.stdout(
        `${JSON.stringify({ schema_version: 1, ok, ...verdict, target, probes: reports.map(reportJson) })}\n`,
      );
    } else {
      io.stdout(reports.map(reportText).join('\n'));
    }
    return ok ? EXIT_OK : EXIT_FAILED;
  },
};
