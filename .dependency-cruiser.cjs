/**
 * Import rules for the whole tree, checked by `npm run lint:deps` (and so by CI's lint step).
 * Dependencies run one way: fdpass and protocol at the bottom, backend-sdk on them, the broker on
 * all three; apps and tools sit on top. Nothing shipped may reach up into tools/ (tests may use the
 * private @handoff/testkit, a declared devDependency), and no module may take part in an import
 * circle: a circle makes load order matter and hides which file owns what.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle: split the shared part into a module both sides import.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-shipped-to-tools',
      severity: 'error',
      comment:
        'Shipped code (a package or app src/ or scripts/) must not import from tools/: tools are dev-only and sit on top.',
      from: { path: '^(packages|apps)/[^/]+/(src|scripts)/' },
      to: { path: '^tools/' },
    },
    {
      name: 'no-reaching-into-tools',
      severity: 'error',
      comment:
        'Tests reach tools/ only through a declared devDependency (e.g. @handoff/testkit), never by a relative path.',
      from: { path: '^(packages|apps)/' },
      to: { path: '^tools/', dependencyTypes: ['local'] },
    },
    {
      name: 'no-reaching-into-other-packages',
      severity: 'error',
      comment:
        'A workspace reaches another only through its package name (its exports), never by a relative path into its folders.',
      // The one exception: the protocol benchmark's baseline is the generated protobufjs code itself.
      from: {
        path: '^(packages|apps|tools)/([^/]+)/',
        pathNot: '^tools/bench/src/protocol\\.bench\\.ts$',
      },
      to: { path: '^(packages|apps|tools)/', pathNot: '^$1/$2/', dependencyTypes: ['local'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules|build|prebuilds|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['@handoff/source', 'import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
    },
  },
};
