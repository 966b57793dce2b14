// The TypeScript examples in the public packages' READMEs, as programs a
// test can compile and run: the READMEs are what a user copies first, and an
// example that does not compile or leaves a mess is a bug like any other.
//
// Convention (for README authors):
// - Every ```ts (or ```typescript) block is a complete program: it imports
//   what it uses, runs with `node --import tsx` from any directory, needs no
//   environment (no XDG_RUNTIME_DIR), creates nothing relative to the working
//   directory, closes what it opens and exits 0 on its own.
// - A block that cannot be one (a list of signatures, a snippet inside a
//   larger program) is marked as a fragment by an HTML comment on the line
//   right before its opening fence, which GitHub and npm do not render:
//
//       <!-- fragment -->
//       ```ts
//
//   `<!-- fragment: why -->` may say why. Keep fragments rare, and never the
//   first example of a package.
// - Blocks in other languages (sh, text, …) are not examples and are ignored.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One runnable example: the package whose README holds it, where, and its code. */
export interface ReadmeExample {
  /** The npm name, e.g. `@handoff/broker`. */
  pkg: string;
  /** 1-based line of the block's opening fence in the README. */
  line: number;
  code: string;
}

/** A fenced block as found, before deciding whether it is an example. */
export interface FencedBlock {
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string's first word, lower-cased (`ts`, `sh`, or `` for none). */
  lang: string;
  code: string;
  /** The line before the fence is a fragment marker. */
  fragment: boolean;
}

/** The public packages whose READMEs hold examples: directory under packages/ → npm name. */
export const README_PACKAGES: Readonly<Record<string, string>> = {
  protocol: '@handoff/protocol',
  fdpass: '@handoff/fdpass',
  'backend-sdk': '@handoff/backend-sdk',
  broker: '@handoff/broker',
};

const FRAGMENT_MARKER = /^\s{0,3}<!--\s*fragment(?::[^>]*)?\s*-->\s*$/i;
const OPENING_FENCE = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)/;
const TS_LANGS = new Set(['ts', 'typescript']);

/**
 * Every fenced code block of a Markdown text (CommonMark fences: ``` or ~~~,
 * up to three spaces of indent, closed by a fence of the same character at
 * least as long). An unclosed block runs to the end, as CommonMark says.
 */
export function parseFencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: FencedBlock[] = [];
  let i = 0;
  while (i < lines.length) {
    const open = OPENING_FENCE.exec(lines[i]!);
    if (!open) {
      i++;
      continue;
    }
    const [, indent, fence, info] = open as unknown as [string, string, string, string];
    // A backtick fence's info string may not contain backticks (CommonMark):
    // such a line is inline code, not a fence.
    if (fence[0] === '`' && lines[i]!.slice(indent.length + fence.length).includes('`')) {
      i++;
      continue;
    }
    const closing = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    const start = i;
    const body: string[] = [];
    i++;
    while (i < lines.length && !closing.test(lines[i]!)) {
      // Content lines lose up to the fence's own indent, as CommonMark says.
      body.push(lines[i]!.replace(new RegExp(`^ {0,${indent.length}}`), ''));
      i++;
    }
    i++; // past the closing fence (or the end)
    blocks.push({
      line: start + 1,
      lang: info.toLowerCase(),
      code: body.length > 0 ? `${body.join('\n')}\n` : '',
      fragment: start > 0 && FRAGMENT_MARKER.test(lines[start - 1]!),
    });
  }
  return blocks;
}

/** The README's TypeScript blocks that are not marked as fragments, in order. */
export function readmeExamples(pkg: string, markdown: string): ReadmeExample[] {
  return parseFencedBlocks(markdown)
    .filter((block) => TS_LANGS.has(block.lang) && !block.fragment)
    .map((block) => ({ pkg, line: block.line, code: block.code }));
}

/**
 * The examples of every public package's README under `repoRoot` (the
 * monorepo, or anything laid out as `packages/<dir>/README.md`). To run them
 * against packages installed from a registry, write each `code` into a
 * project that has them in its node_modules: the examples import only
 * package names and node builtins.
 */
export function collectReadmeExamples(
  repoRoot: string,
  packages: Readonly<Record<string, string>> = README_PACKAGES,
): ReadmeExample[] {
  return Object.entries(packages).flatMap(([dir, pkg]) =>
    readmeExamples(pkg, readFileSync(join(repoRoot, 'packages', dir, 'README.md'), 'utf8')),
  );
}

/** A file name for an example, unique among a package's blocks: `broker-readme-L12.ts`. */
export function exampleFileName(example: Pick<ReadmeExample, 'pkg' | 'line'>): string {
  const base = example.pkg.replace(/^@[^/]+\//, '').replace(/[^a-z0-9-]/gi, '-');
  return `${base}-readme-L${example.line}.ts`;
}
