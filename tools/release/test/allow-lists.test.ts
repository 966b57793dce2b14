// The glob matcher and the verdict the tarball test relies on: a matcher that
// matched too much would let anything ship, one that matched too little would
// fail every release.
import { describe, expect, it } from 'vitest';
import { checkFileList, matchesGlob, PUBLIC_PACKAGES, unmatchedGlobs } from '../src/allow-lists.ts';

const rulesFor = (name: string) => {
  const rules = PUBLIC_PACKAGES.find((r) => r.name === name);
  if (rules === undefined) throw new Error(`no rules for ${name}`);
  return rules;
};

describe('matchesGlob', () => {
  it.each([
    ['dist/**/*.js', 'dist/index.js', true],
    ['dist/**/*.js', 'dist/cli/deep/main.js', true],
    ['dist/**/*.js', 'dist/index.js.map', false],
    ['dist/**/*.js', 'src/index.js', false],
    ['dist/**/*.js', 'distx/index.js', false],
    ['src/generated/*.js', 'src/generated/broker_v1.js', true],
    ['src/generated/*.js', 'src/generated/x/broker_v1.js', false],
    ['native/*.{cc,h}', 'native/binding.cc', true],
    ['native/*.{cc,h}', 'native/peer_cred.h', true],
    ['native/*.{cc,h}', 'native/peer_cred.hh', false],
    ['LICENSE', 'LICENSE', true],
    ['LICENSE', 'LICENSE.md', false],
    ['dist/index.js', 'dist/indexXjs', false],
    ['prebuilds/*/*.node', 'prebuilds/linux-x64/@handoff+fdpass.glibc.node', true],
    ['**/*.test.*', 'src/framing.test.ts', true],
    ['**/*.test.*', 'framing.test.js', true],
    ['**/.*', '.npmrc', true],
    ['**/.*', 'dist/.DS_Store', true],
    ['**/.*', 'dist/index.js', false],
    ['**/test/**', 'test/a.ts', true],
    ['**/test/**', 'src/latest/a.ts', false],
    ['templates/**', 'templates/app/test/x.test.ts', true],
    ['b?ild/**', 'build/Release/fdpass.node', true],
  ])('%s against %s: %s', (glob, path, expected) => {
    expect(matchesGlob(path, glob)).toBe(expected);
  });

  it('refuses a glob with an unclosed brace', () => {
    expect(() => matchesGlob('a', 'native/*.{cc')).toThrow(/unclosed \{/);
  });
});

describe('checkFileList', () => {
  const broker = rulesFor('@handoff/broker');
  const good = [
    'package.json',
    'README.md',
    'LICENSE',
    'CHANGELOG.md',
    'dist/index.js',
    'dist/index.js.map',
    'dist/index.d.ts',
    'dist/index.d.ts.map',
    'dist/cli/main.js',
    'bin/handoff-broker',
    'src/index.ts',
    'src/cli/main.ts',
  ];

  it('passes a tarball that ships what it must and nothing else', () => {
    expect(checkFileList(broker, good)).toEqual({ notAllowed: [], missing: [] });
  });

  it('names every file that is not allowed or is forbidden, and every required one missing', () => {
    const stray = [
      'src/framing.test.ts',
      'dist/framing.test.js',
      'dist/x.tsbuildinfo',
      'build/Release/fdpass.node',
      '.env',
      'test/harness.ts',
      'tsconfig.json',
      'notes.txt',
    ];
    const files = [...good.filter((f) => f !== 'README.md' && f !== 'dist/cli/main.js'), ...stray];
    expect(checkFileList(broker, files)).toEqual({
      notAllowed: stray,
      missing: ['README.md', 'dist/cli/main.js'],
    });
  });

  it("lets a template ship its own tests and dotfiles, but only under the template's glob", () => {
    const create = rulesFor('@handoff/create-daemon');
    const files = [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/main.js',
      'templates/daemon/test/daemon.test.ts',
      'templates/daemon/.gitignore',
      'src/main.test.ts',
    ];
    expect(checkFileList(create, files)).toEqual({
      notAllowed: ['src/main.test.ts'],
      missing: [],
    });
  });

  it('unmatchedGlobs lists the globs nothing matched', () => {
    expect(unmatchedGlobs(['dist/*.js', 'proto/*.proto'], ['dist/a.js'])).toEqual([
      'proto/*.proto',
    ]);
  });
});
