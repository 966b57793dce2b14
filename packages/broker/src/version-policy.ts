// Which service definition answers a Hello's (service_name, wanted_version):
// a small semver ordering (no dependency) and the selection rules below.
// Hello syntax checks live in @handoff/protocol (validateHello); spawning the
// chosen definition belongs to the server.
//
// Rules, in order:
//  1. No definition has that name ⇒ SERVICE_UNKNOWN.
//  2. A definition *admits* the wanted version when its policy allows it —
//     wanted ≥ its `minVersion` (when set) and wanted is one of its
//     `allowVersions` (when set) — and its own version *serves* wanted:
//     equal to it, or newer and compatible. Compatible means the same major
//     (for 0.y.z the same minor, for 0.0.z the same patch: in 0.x every minor
//     may break, as npm's caret reads it); and when either side is a
//     prerelease, the same major.minor.patch (1.3.0-beta.1 never answers a
//     client asking for 1.2.0, and 1.2.0-rc.1 is only served by 1.2.0-rc.N
//     or 1.2.0).
//  3. Among admitting definitions: the one whose version equals wanted, else
//     the highest version.
//  4. None admits ⇒ VERSION_BLOCKED. If some definition's policy refused the
//     wanted version, the reply carries `retryAfterMs` (30 s by default): the
//     client may retry after it or the service is upgraded. When nothing was
//     refused by policy there is simply no compatible version and no retry
//     hint (retrying cannot help until the configuration changes).
// Ordering follows semver §11: numeric parts compare as numbers of any size,
// a prerelease is lower than its release (1.0.0-rc.1 < 1.0.0), identifiers
// compare numerically when all digits, numeric < alphanumeric, and a longer
// identifier list wins a tie.
import { ErrorCode } from '@handoff/protocol';
import type { ServiceDefinition } from './config/definition.js';
import { definitionsNamed } from './config/definition-index.js';

export const DEFAULT_BLOCKED_RETRY_AFTER_MS = 30_000;

/** Same language as @handoff/protocol's VERSION_PATTERN, with capture groups. */
const VERSION = /^(\d+)\.(\d+)\.(\d+)(?:-([a-z0-9.]+))?$/;
const DIGITS = /^\d+$/;

interface ParsedVersion {
  /** major, minor, patch as digit strings without leading zeros. */
  readonly core: readonly [string, string, string];
  readonly prerelease: readonly string[];
}

function stripZeros(digits: string): string {
  return digits.replace(/^0+(?=\d)/, '');
}

function parseVersion(text: string): ParsedVersion | undefined {
  const m = VERSION.exec(text);
  if (m === null) return undefined;
  return {
    core: [stripZeros(m[1]!), stripZeros(m[2]!), stripZeros(m[3]!)],
    prerelease: m[4] === undefined ? [] : m[4].split('.'),
  };
}

function sign(n: number): -1 | 0 | 1 {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/** Digit strings without leading zeros: longer is larger, else lexical. */
function compareNumeric(a: string, b: string): -1 | 0 | 1 {
  if (a.length !== b.length) return sign(a.length - b.length);
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareIdentifier(a: string, b: string): -1 | 0 | 1 {
  const an = DIGITS.test(a);
  const bn = DIGITS.test(b);
  if (an && bn) return compareNumeric(stripZeros(a), stripZeros(b));
  if (an) return -1;
  if (bn) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareParsed(a: ParsedVersion, b: ParsedVersion): -1 | 0 | 1 {
  for (let i = 0; i < 3; i++) {
    const c = compareNumeric(a.core[i]!, b.core[i]!);
    if (c !== 0) return c;
  }
  const ap = a.prerelease;
  const bp = b.prerelease;
  if (ap.length === 0 || bp.length === 0) return sign(bp.length - ap.length);
  for (let i = 0; i < Math.min(ap.length, bp.length); i++) {
    const c = compareIdentifier(ap[i]!, bp[i]!);
    if (c !== 0) return c;
  }
  return sign(ap.length - bp.length);
}

/**
 * Semver precedence of two `MAJOR.MINOR.PATCH[-pre]` strings: -1, 0 or 1.
 * Throws RangeError for a string that is not one (validate input first).
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (pa === undefined || pb === undefined) {
    throw new RangeError(
      `not a version: ${JSON.stringify((pa === undefined ? a : b).slice(0, 80))}`,
    );
  }
  return compareParsed(pa, pb);
}

function sameCore(a: ParsedVersion, b: ParsedVersion): boolean {
  return a.core.every((part, i) => part === b.core[i]);
}

/** `offered` can answer a client asking for `wanted` (see rule 2). */
function serves(offered: ParsedVersion, wanted: ParsedVersion): boolean {
  if (compareParsed(offered, wanted) < 0) return false;
  if (offered.prerelease.length > 0 || wanted.prerelease.length > 0) {
    return sameCore(offered, wanted);
  }
  const [major, minor] = wanted.core;
  if (offered.core[0] !== major) return false;
  if (major !== '0') return true;
  if (offered.core[1] !== minor) return false;
  return minor !== '0' || offered.core[2] === wanted.core[2];
}

/** Why the definition's policy refuses `wanted`, or undefined when it allows it. */
function policyRefusal(definition: ServiceDefinition, wanted: ParsedVersion): string | undefined {
  const { minVersion, allowVersions } = definition;
  if (minVersion !== undefined) {
    const min = parseVersion(minVersion);
    if (min === undefined || compareParsed(wanted, min) < 0)
      return `below minVersion ${minVersion}`;
  }
  if (allowVersions !== undefined) {
    const allowed = allowVersions.some((v) => {
      const p = parseVersion(v);
      return p !== undefined && compareParsed(p, wanted) === 0;
    });
    if (!allowed) return `not in allowVersions [${allowVersions.join(', ')}]`;
  }
  return undefined;
}

export type VersionSelection =
  | { ok: true; definition: ServiceDefinition }
  | {
      ok: false;
      code: ErrorCode.SERVICE_UNKNOWN | ErrorCode.VERSION_BLOCKED;
      reason: string;
      retryAfterMs?: number;
    };

export interface SelectOptions {
  /** Retry hint when a policy refused the version; default 30 000 ms. */
  retryAfterMs?: number;
}

/** Lists at most a few versions in a reason; a Refused reason is not a catalogue. */
function listVersions(definitions: readonly ServiceDefinition[]): string {
  const shown = definitions.slice(0, 8).map((d) => d.version);
  return definitions.length > shown.length ? `${shown.join(', ')}, …` : shown.join(', ');
}

/** Picks the definition that answers (name, wantedVersion); the rules are at the top of this file. */
export function selectDefinition(
  definitions: readonly ServiceDefinition[],
  name: string,
  wantedVersion: string,
  options: SelectOptions = {},
): VersionSelection {
  const named = definitionsNamed(definitions, name);
  if (named.length === 0) {
    return {
      ok: false,
      code: ErrorCode.SERVICE_UNKNOWN,
      reason: `no service named ${JSON.stringify(name.slice(0, 80))}`,
    };
  }
  const wanted = parseVersion(wantedVersion);
  if (wanted === undefined) {
    return {
      ok: false,
      code: ErrorCode.VERSION_BLOCKED,
      reason: `${JSON.stringify(wantedVersion.slice(0, 80))} is not a version`,
    };
  }
  let best: { definition: ServiceDefinition; version: ParsedVersion } | undefined;
  let refusal: string | undefined;
  for (const definition of named) {
    const offered = parseVersion(definition.version);
    if (offered === undefined || !serves(offered, wanted)) continue;
    const refused = policyRefusal(definition, wanted);
    if (refused !== undefined) {
      refusal ??= `${name}@${definition.version}: ${wantedVersion} is ${refused}`;
      continue;
    }
    if (compareParsed(offered, wanted) === 0) return { ok: true, definition };
    if (best === undefined || compareParsed(offered, best.version) > 0) {
      best = { definition, version: offered };
    }
  }
  if (best !== undefined) return { ok: true, definition: best.definition };
  if (refusal === undefined) {
    // A definition that would not serve the version anyway may still have a
    // policy against it; say so, since that is what an operator set up.
    for (const definition of named) {
      const refused = policyRefusal(definition, wanted);
      if (refused !== undefined) {
        refusal = `${name}@${definition.version}: ${wantedVersion} is ${refused}`;
        break;
      }
    }
  }
  if (refusal !== undefined) {
    return {
      ok: false,
      code: ErrorCode.VERSION_BLOCKED,
      reason: refusal,
      retryAfterMs: options.retryAfterMs ?? DEFAULT_BLOCKED_RETRY_AFTER_MS,
    };
  }
  return {
    ok: false,
    code: ErrorCode.VERSION_BLOCKED,
    reason: `${name} has no version compatible with ${wantedVersion} (available: ${listVersions(named)})`,
  };
}
