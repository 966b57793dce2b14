// What each public package may ship, and what it must: the file lists a
// tarball is held to (test/tarballs.e2e.ts), written as globs so a new
// module in dist/ needs no edit here but a stray build directory, a test
// file or a forgotten secret fails the release instead of reaching users.

export interface TarballRules {
  /** The npm name, e.g. `@handoff/broker`. */
  readonly name: string;
  /** The package's directory under the repository root. */
  readonly dir: string;
  /** Every shipped file must match one of these. */
  readonly allowed: readonly string[];
  /** Each glob must match at least one shipped file. */
  readonly required: readonly string[];
  /**
   * Shipped as they are (a project template holds its own tests and
   * dotfiles): FORBIDDEN does not apply under these globs.
   */
  readonly verbatim?: readonly string[];
}

/** Never shipped, whatever an allow-list says: tests, build state, local compiles. */
export const FORBIDDEN: readonly string[] = [
  '**/*.test.*',
  '**/*.e2e.*',
  '**/*.fuzz.*',
  '**/*.tsbuildinfo',
  '**/test/**',
  '**/node_modules/**',
  '**/.*',
  '**/.*/**',
  'build/**',
  'tsconfig*.json',
  'vitest.config.ts',
];

/** What every public package ships: compiled JS, declarations, their maps and the sources they name. */
const TYPESCRIPT_PACKAGE = [
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'dist/**/*.js',
  'dist/**/*.js.map',
  'dist/**/*.d.ts',
  'dist/**/*.d.ts.map',
  'src/**/*.ts',
];

const ALWAYS_REQUIRED = ['package.json', 'README.md', 'LICENSE'];

export const PUBLIC_PACKAGES: readonly TarballRules[] = [
  {
    name: '@handoff/protocol',
    dir: 'packages/protocol',
    // The generated protobufjs module is JavaScript with hand-written-style
    // declarations beside it; scripts/copy-generated.mjs copies it into dist/.
    allowed: [...TYPESCRIPT_PACKAGE, 'src/generated/*.js', 'proto/*.proto'],
    required: [
      ...ALWAYS_REQUIRED,
      'dist/index.js',
      'dist/generated/*.js',
      'src/generated/*.js',
      'proto/*.proto',
    ],
  },
  {
    name: '@handoff/fdpass',
    dir: 'packages/fdpass',
    // binding.gyp and native/ let a platform without a prebuild compile the
    // addon; prebuilds/<platform>-<arch>/ is what node-gyp-build loads.
    allowed: [
      ...TYPESCRIPT_PACKAGE,
      'binding.gyp',
      'native/*.{cc,h}',
      // The install-time fallback only; scripts/prebuild.mjs is a release tool.
      'scripts/build-native.mjs',
      'prebuilds/*/*.node',
    ],
    required: [
      ...ALWAYS_REQUIRED,
      'dist/index.js',
      'binding.gyp',
      'native/*.cc',
      `prebuilds/linux-${process.arch}/*.node`,
    ],
  },
  {
    name: '@handoff/backend-sdk',
    dir: 'packages/backend-sdk',
    allowed: TYPESCRIPT_PACKAGE,
    required: [...ALWAYS_REQUIRED, 'dist/index.js'],
  },
  {
    name: '@handoff/broker',
    dir: 'packages/broker',
    // bin/handoff-broker: the executable, a sh script that starts the CLI
    // (dist/cli/main.js) with the broker's node flags.
    allowed: [...TYPESCRIPT_PACKAGE, 'bin/handoff-broker'],
    required: [...ALWAYS_REQUIRED, 'dist/index.js', 'dist/cli/main.js', 'bin/handoff-broker'],
  },
  {
    name: '@handoff/create-daemon',
    dir: 'packages/create-daemon',
    // The starter project the bin copies is generated at build time from
    // apps/demo-daemon (under templates/ or dist/templates/), so it holds any
    // file type, its own tests and dotfiles among them.
    // dist/versions.json: the @handoff/* versions a new project depends on.
    allowed: [...TYPESCRIPT_PACKAGE, '{templates,dist/templates}/**', 'dist/versions.json'],
    required: [...ALWAYS_REQUIRED, 'dist/main.js', '{templates,dist/templates}/**'],
    verbatim: ['{templates,dist/templates}/**'],
  },
];

/** Every glob in `globs` no file in `files` matches. */
export function unmatchedGlobs(globs: readonly string[], files: readonly string[]): string[] {
  return globs.filter((glob) => !files.some((file) => matchesGlob(file, glob)));
}

export interface FileListVerdict {
  /** Shipped but matched by no allowed glob, or matched by a forbidden one. */
  readonly notAllowed: string[];
  /** Required globs no shipped file matches. */
  readonly missing: string[];
}

/** Holds a tarball's file list (paths relative to the package root) to its rules. */
export function checkFileList(rules: TarballRules, files: readonly string[]): FileListVerdict {
  const verbatim = rules.verbatim ?? [];
  const forbidden = (file: string) =>
    !verbatim.some((glob) => matchesGlob(file, glob)) &&
    FORBIDDEN.some((glob) => matchesGlob(file, glob));
  const notAllowed = files.filter(
    (file) => forbidden(file) || !rules.allowed.some((glob) => matchesGlob(file, glob)),
  );
  return { notAllowed, missing: unmatchedGlobs(rules.required, files) };
}

const compiled = new Map<string, RegExp>();

/**
 * Glob match for relative POSIX paths: `*` and `?` stay within one path
 * segment, `**` spans any number of them (`a/**\/b` includes `a/b`), and
 * `{x,y}` picks one literal alternative. Written here because Node 20's
 * path.matchesGlob is experimental and warns on every process.
 */
export function matchesGlob(path: string, glob: string): boolean {
  let re = compiled.get(glob);
  if (re === undefined) {
    re = globToRegExp(glob);
    compiled.set(glob, re);
  }
  return re.test(path);
}

const escapeRegExp = (text: string) => text.replace(/[.+^$()|[\]\\{}*?]/g, '\\$&');

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      const atSegmentStart = i === 0 || glob[i - 1] === '/';
      if (atSegmentStart && glob[i + 2] === '/') {
        re += '(?:[^/]+/)*';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end === -1) throw new Error(`unclosed { in glob ${JSON.stringify(glob)}`);
      re += `(?:${glob
        .slice(i + 1, end)
        .split(',')
        .map(escapeRegExp)
        .join('|')})`;
      i = end;
    } else {
      re += escapeRegExp(c);
    }
  }
  return new RegExp(`^${re}$`);
}
