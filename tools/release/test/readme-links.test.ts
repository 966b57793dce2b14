// The package READMEs are also the packages' pages on the npm registry,
// where a relative link resolves against npmjs.com and lands nowhere. So
// every link in them is an absolute http(s) URL or an anchor of the same
// README; links into this repository name files that exist; and nothing
// cites DESIGN.md, which is not in the repository or the tarballs.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFencedBlocks, README_PACKAGES } from '../src/readme-examples.ts';

const repoRoot = resolve(import.meta.dirname, '../../..');
const REPO_URL = /^https:\/\/github\.com\/handoff-dev\/handoff\/(?:blob|tree)\/main\/([^#?]*)/;

/** The Markdown outside fenced code blocks and inline code spans, line for line. */
function prose(markdown: string): string[] {
  const lines = markdown.split(/\r?\n/);
  for (const block of parseFencedBlocks(markdown)) {
    const bodyLines = block.code === '' ? 0 : block.code.split('\n').length - 1;
    // The fences and the body; an unclosed block simply runs off the end.
    for (let i = block.line - 1; i <= block.line + bodyLines && i < lines.length; i++)
      lines[i] = '';
  }
  return lines.map((line) => line.replace(/(`+)(?:(?!\1).)+?\1/g, ''));
}

/** Every link destination with its 1-based line: inline, reference definitions, autolinks, HTML. */
function links(markdown: string): { line: number; target: string }[] {
  const found: { line: number; target: string }[] = [];
  prose(markdown).forEach((text, index) => {
    const line = index + 1;
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) {
      found.push({ line, target: m[1]! });
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(text);
    if (definition) found.push({ line, target: definition[1]! });
    for (const m of text.matchAll(/<((?:https?|ftp|file):[^>\s]*)>/g))
      found.push({ line, target: m[1]! });
    for (const m of text.matchAll(/\b(?:href|src)\s*=\s*["']([^"']*)["']/g)) {
      found.push({ line, target: m[1]! });
    }
  });
  return found;
}

/** The anchors GitHub (and npm, which follows it) gives the README's headings. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const text of prose(markdown.replace(/`/g, ''))) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (!heading) continue;
    const plain = heading[1]!
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '')
      .replace(/[*~]/g, '');
    const slug = plain
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** What is wrong with a README's links, one line per fault; empty when nothing is. */
function linkFaults(markdown: string, root: string): string[] {
  const faults: string[] = [];
  const anchors = headingAnchors(markdown);
  for (const { line, target } of links(markdown)) {
    if (target.startsWith('#')) {
      if (!anchors.has(decodeURIComponent(target.slice(1)))) {
        faults.push(`line ${line}: ${target} is no heading of this README`);
      }
      continue;
    }
    if (!/^https?:\/\//.test(target)) {
      faults.push(`line ${line}: ${target} is relative: it breaks on the registry's page`);
      continue;
    }
    const inRepo = REPO_URL.exec(target);
    if (inRepo && !existsSync(join(root, decodeURIComponent(inRepo[1]!)))) {
      faults.push(`line ${line}: ${target} names no file of the repository`);
    }
  }
  markdown.split(/\r?\n/).forEach((text, index) => {
    if (/DESIGN(?:\.md)?\s*§|DESIGN\.md/.test(text)) {
      faults.push(`line ${index + 1}: cites DESIGN.md, which is not shipped`);
    }
  });
  return faults;
}

describe('package README links', () => {
  for (const [dir, pkg] of Object.entries(README_PACKAGES)) {
    it(`${pkg} README links work on the registry's page`, () => {
      const markdown = readFileSync(join(repoRoot, 'packages', dir, 'README.md'), 'utf8');
      expect(linkFaults(markdown, repoRoot)).toEqual([]);
    });
  }
});

describe('the link check', () => {
  const sample = [
    '# Title', //                                               1
    '## Serving: `serveDaemon(options)` → `DaemonServer`', //   2
    'See [a](../protocol/README.md), [b](#title), [c](#nope).', // 3
    '[d]: ./x.md', //                                           4
    '[e](https://github.com/handoff-dev/handoff/blob/main/LICENSE)', // 5
    '[f](https://github.com/handoff-dev/handoff/blob/main/no-such-file.md)', // 6
    'As DESIGN §2.5 says, and [g](#serving-servedaemonoptions--daemonserver).', // 7
    '```md', //                                                 8
    '[h](relative-in-code.md)', //                              9
    '```', //                                                   10
    'and `[i](inline-code.md)` <https://example.com/j>', //     11
  ].join('\n');

  it('reports relative links, unknown anchors, missing repo files and DESIGN citations', () => {
    expect(linkFaults(sample, repoRoot)).toEqual([
      "line 3: ../protocol/README.md is relative: it breaks on the registry's page",
      'line 3: #nope is no heading of this README',
      "line 4: ./x.md is relative: it breaks on the registry's page",
      'line 6: https://github.com/handoff-dev/handoff/blob/main/no-such-file.md names no file of the repository',
      'line 7: cites DESIGN.md, which is not shipped',
    ]);
  });

  it('numbers repeated headings as GitHub does', () => {
    expect([...headingAnchors('## API\n### Errors\n## Errors\n')]).toEqual([
      'api',
      'errors',
      'errors-1',
    ]);
  });
});
