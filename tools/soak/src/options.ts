// The soak's command line: flags into a SoakOptions value, or a usage error.
// What the options do is campaign.ts's; how long things take by default is
// decided here, with the reasons next to the numbers.
import { parseArgs } from 'node:util';

export const USAGE = `Usage: npm run -s soak -- [--duration 60s] [options]

Runs mixed traffic (handoffs with and without a first request, framed and
line-wire requests, identity probes, admin calls, slow readers, abrupt
closes) through a real broker and the real demo daemon, SIGKILLs the daemon
now and then, checks every answer, and samples fds, child processes and RSS
of the runner, the broker and the daemon. JSON lines on stdout (one per
sample, then a summary); progress on stderr. Exit 0 when the summary says
ok, 1 otherwise, 2 on a usage error.

Options:
  --duration D        how long traffic runs: seconds (60, 90s), minutes (30m) or hours (1h); default 60
  --concurrency N     traffic loops running at once (default 12)
  --kill-every S      seconds between daemon SIGKILLs, 0 for none (default 12: the broker's
                      spawn budget grants 3 starts per 30 s, so faster kills would be refused)
  --sample-every MS   sampling period in milliseconds (default 1000)
  --max-rss-growth P  allowed RSS growth after warm-up, in percent (default 10)
  --json              accepted for symmetry: stdout is always JSON lines
  -h, --help          show this help
`;

export interface SoakOptions {
  durationMs: number;
  concurrency: number;
  killEveryMs: number;
  sampleEveryMs: number;
  maxRssGrowthPct: number;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
}

export function parseSoakArgs(argv: string[]): SoakOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        duration: { type: 'string' },
        concurrency: { type: 'string' },
        'kill-every': { type: 'string' },
        'sample-every': { type: 'string' },
        'max-rss-growth': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  return {
    durationMs: parseDuration(values.duration as string | undefined, 60_000),
    concurrency: integer(values.concurrency, 'concurrency', 12, 1, 64),
    killEveryMs: parseDuration(values['kill-every'] as string | undefined, 12_000, {
      allowZero: true,
    }),
    sampleEveryMs: integer(values['sample-every'], 'sample-every', 1000, 100, 60_000),
    maxRssGrowthPct: integer(values['max-rss-growth'], 'max-rss-growth', 10, 1, 1000),
  };
}

const UNITS: Record<string, number> = { '': 1000, s: 1000, m: 60_000, h: 3_600_000 };

/** "60", "90s", "30m", "1h", "1.5m" → milliseconds. */
export function parseDuration(
  raw: string | undefined,
  fallback: number,
  { allowZero = false } = {},
): number {
  if (raw === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(raw.trim());
  const ms = match ? Math.round(Number(match[1]) * UNITS[match[2] ?? '']!) : Number.NaN;
  if (!(ms > 0 || (allowZero && ms === 0)) || ms > 7 * 24 * 3_600_000) {
    throw new UsageError(`not a duration: ${JSON.stringify(raw)} (try 60, 90s, 30m or 1h)`);
  }
  return ms;
}

function integer(
  raw: string | boolean | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`--${name} takes a whole number from ${min} to ${max}, not ${raw}`);
  }
  return value;
}
