// Turning the template's text into the new app's, sans-io: one pass of one
// regular expression over each file (so a new name that contains a template
// name is never rewritten twice), the check that nothing of the template
// was left behind, and the check that no renamed identifier lands on one
// the template already uses. Which files to read and write is generate.ts's.
import { CreateDaemonError } from '../errors.js';
import { type NameForms, nameForms } from './names.js';
import { formatProtocolId } from './protocol-id.js';
import {
  BARE_CAMEL_SUFFIX,
  TEMPLATE_APP,
  TEMPLATE_PHRASES,
  TEMPLATE_PROTOCOL_ID,
  TEMPLATE_SERVICE,
  TEMPLATE_WORD,
  type TemplatePhrase,
} from './template.js';

export interface RewriteTarget {
  /** The new name's spellings: directory, service, package, client executable. */
  readonly forms: NameForms;
  readonly protocolId: number;
}

/** What the template calls itself; the defaults are apps/demo-daemon's. */
export interface RewriteSource {
  readonly app: string;
  readonly service: string;
  readonly protocolId: number;
  readonly word: string;
  readonly phrases: readonly TemplatePhrase[];
}

export const DEMO_DAEMON_SOURCE: RewriteSource = {
  app: TEMPLATE_APP,
  service: TEMPLATE_SERVICE,
  protocolId: TEMPLATE_PROTOCOL_ID,
  word: TEMPLATE_WORD,
  phrases: TEMPLATE_PHRASES,
};

interface Rule {
  readonly pattern: string;
  readonly replace: (match: string) => string;
}

export interface RewritePlan {
  readonly source: RewriteSource;
  readonly target: RewriteTarget;
  /** Every rule as one alternation, earlier rules first at any one position. */
  readonly regex: RegExp;
  readonly rules: readonly Rule[];
  /** Template spellings that must not survive (outside what a rule replaced). */
  readonly trace: RegExp;
  /** New spellings that stand alone in code as names of namespaces and properties. */
  readonly bareForms: ReadonlySet<string>;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** A phrase as written in a source, where line breaks may fall between any two words. */
const phrasePattern = (text: string) => text.split(/\s+/).map(escapeRegExp).join('\\s+');
/** `0xf0d0`, matched in any case; the replacement keeps the case of its hex digits. */
const idPattern = (id: number) =>
  `0[xX]${[...id.toString(16).padStart(4, '0')].map((c) => (/[a-f]/.test(c) ? `[${c}${c.toUpperCase()}]` : c)).join('')}(?![0-9a-fA-F])`;
const idLike = (match: string, id: number) =>
  /[A-F]/.test(match.slice(2)) ? formatProtocolId(id) : `0x${id.toString(16).padStart(4, '0')}`;

/**
 * The rules for one source and target. The template's app name is two
 * things: the app (its directory, package, vitest project and test file),
 * which becomes the new name; and the daemon executable (`Usage:
 * demo-daemon`, its log name, `startDemoDaemon`), which becomes
 * `<name>-daemon` — the client executable is `<name>`, as `demo-kv` was.
 */
export function createRewritePlan(source: RewriteSource, target: RewriteTarget): RewritePlan {
  const app = nameForms(source.app);
  const service = nameForms(source.service);
  const name = target.forms;
  const daemon = nameForms(`${name.kebab}-daemon`);
  const literal = (from: string, to: string): Rule => ({
    pattern: escapeRegExp(from),
    replace: () => to,
  });
  const rules: Rule[] = [
    ...source.phrases.map((p) => ({ pattern: phrasePattern(p.find), replace: () => p.replace })),
    literal(`@handoff/${app.kebab}`, `@handoff/${name.kebab}`),
    {
      pattern: `(?<=apps/|apps\\\\/|--project |^# )${escapeRegExp(app.kebab)}|${escapeRegExp(app.kebab)}(?=\\.int\\.test|:int| tests\\b)`,
      replace: () => name.kebab,
    },
    literal(app.kebab, daemon.kebab),
    literal(app.pascal, daemon.pascal),
    literal(app.upperSnake, daemon.upperSnake),
    literal(app.snake, daemon.snake),
    literal(app.camel, daemon.camel),
    literal(service.kebab, name.kebab),
    literal(service.pascal, name.pascal),
    literal(service.upperSnake, name.upperSnake),
    literal(service.snake, name.snake),
    {
      pattern: `(?<![\\w$])${escapeRegExp(service.camel)}(?![\\w$])`,
      replace: () => `${name.camel}${BARE_CAMEL_SUFFIX}`,
    },
    literal(service.camel, name.camel),
    // Prose and temp-dir prefixes: "the demo daemon", tempDir('demo-int').
    { pattern: `\\b${escapeRegExp(source.word)}(?= daemon\\b|-)`, replace: () => name.kebab },
    {
      pattern: idPattern(source.protocolId),
      replace: (match) => idLike(match, target.protocolId),
    },
    // An id the template's tests use as "one the daemon does not serve":
    // its neighbour, so it stays in the private range and differs from ours.
    {
      pattern: idPattern(source.protocolId ^ 1),
      replace: (match) => idLike(match, target.protocolId ^ 1),
    },
  ];
  const regex = new RegExp(rules.map((rule, i) => `(?<r${i}>${rule.pattern})`).join('|'), 'gm');
  const word = escapeRegExp(source.word);
  const capitalized = source.word.charAt(0).toUpperCase() + source.word.slice(1);
  const trace = new RegExp(
    `(?:${word}|${escapeRegExp(capitalized)})(?![a-z])|${escapeRegExp(source.word.toUpperCase())}|${idPattern(source.protocolId)}|${idPattern(source.protocolId ^ 1)}`,
    'g',
  );
  const bareForms = new Set([name.kebab, name.snake, name.pascal, name.camel, name.upperSnake]);
  return { source, target, regex, rules, trace, bareForms };
}

/** The text with every template spelling replaced by the target's. */
export function rewriteText(text: string, plan: RewritePlan): string {
  plan.regex.lastIndex = 0;
  return text.replace(plan.regex, (...args) => {
    const groups = args.at(-1) as Record<string, string | undefined>;
    for (let i = 0; i < plan.rules.length; i++) {
      const matched = groups[`r${i}`];
      if (matched !== undefined) return plan.rules[i]!.replace(matched);
    }
    // Unreachable: every alternative of the regex is one rule's named group.
    throw new CreateDaemonError('INTERNAL', 'a rewrite match with no rule');
  });
}

/** A relative path with `/` separators, each segment rewritten like text. */
export function rewritePath(path: string, plan: RewritePlan): string {
  return path
    .split('/')
    .map((segment) => rewriteText(segment, plan))
    .join('/');
}

export interface Leftover {
  /** 1-based. */
  readonly line: number;
  readonly text: string;
}

/**
 * Template spellings the rules do not cover, found in what the rules leave
 * untouched — so a new name that happens to contain one is no leftover.
 */
export function leftovers(text: string, plan: RewritePlan): Leftover[] {
  plan.regex.lastIndex = 0;
  // Each replaced span becomes one NUL (and its line breaks, to keep line
  // numbers): a trace cannot reach across it.
  const residue = text.replace(plan.regex, (match) => `\0${match.replace(/[^\n]/g, '')}`);
  const original = text.split('\n');
  const found: Leftover[] = [];
  residue.split('\n').forEach((line, index) => {
    plan.trace.lastIndex = 0;
    if (plan.trace.test(line)) {
      found.push({ line: index + 1, text: original[index]!.trim().slice(0, 120) });
    }
  });
  return found;
}

export interface IdentifierClash {
  readonly file: string;
  /** The template's identifier, e.g. DemoKvErrorCode. */
  readonly from: string;
  /** What it would become, e.g. KvErrorCode — which the template already uses. */
  readonly to: string;
}

const IDENTIFIER = /[A-Za-z_$][\w$]*/g;

/**
 * Renamed identifiers that would equal one the template keeps: the name
 * "kv" turns DemoKvErrorCode into KvErrorCode, and "line" turns DemoKvClient
 * into LineClient, both already there. Words in comments and strings count
 * too, so a clash is sometimes only a coincidence of wording; the bare new
 * spellings (a namespace, a property) are left to nameProblem.
 */
export function identifierClashes(
  files: readonly { path: string; text: string }[],
  plan: RewritePlan,
): IdentifierClash[] {
  const kept = new Set<string>();
  const renamed = new Map<string, { file: string; from: string }>();
  const seen = new Set<string>();
  for (const file of files) {
    for (const [token] of file.text.matchAll(IDENTIFIER)) {
      if (seen.has(token)) continue;
      seen.add(token);
      const rewritten = rewriteText(token, plan);
      if (rewritten === token) kept.add(token);
      else if (!plan.bareForms.has(rewritten))
        renamed.set(rewritten, { file: file.path, from: token });
    }
  }
  return [...renamed]
    .filter(([to]) => kept.has(to))
    .map(([to, { file, from }]) => ({ file, from, to }))
    .sort((a, b) => a.to.localeCompare(b.to));
}
