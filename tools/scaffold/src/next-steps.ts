// What to do once apps/<name> exists, sans-io: test it, route to it through
// a broker, use its client — as commands run from the repository root, from
// source (no build needed), then its built executable. The integration test
// runs these very argv arrays, so the printed steps are known to work, and
// then checks the repository is still lint-clean: the one file the steps
// write (the service definition) goes to tmp/, which .gitignore keeps out
// of git and Biome.
import type { GeneratedApp } from './generate.js';

/** Runs a TypeScript entry from source: workspace packages resolve to their src/, tsx compiles. */
export const FROM_SOURCE = ['node', '--conditions=@handoff/source', '--import', 'tsx'];

export interface NextStep {
  /** A comment line before the command; none for a command that goes on the one before. */
  readonly say?: string;
  readonly argv?: readonly string[];
  /** `> file` after the command. */
  readonly stdoutTo?: string;
  /** `&` after the command. */
  readonly background?: boolean;
}

type StepApp = Pick<GeneratedApp, 'name' | 'forms' | 'relativeDir' | 'packageName' | 'executables'>;

/** The `node -e` that prints the app's broker service definition as JSON. */
export function serviceDefinitionArgv(app: StepApp, idleTimeoutSecs = 300): string[] {
  const module = `./${app.relativeDir}/src/service-definition.ts`;
  const call = `m.${app.forms.camel}ServiceDefinition({ idleTimeoutSecs: ${idleTimeoutSecs} })`;
  return [
    ...FROM_SOURCE,
    '-e',
    `import("${module}").then((m) => console.log(JSON.stringify(${call})))`,
  ];
}

export const brokerServeArgv = (configFile: string) => [
  ...FROM_SOURCE,
  'packages/broker/src/cli/main.ts',
  'serve',
  '--config-file',
  configFile,
];

export const clientArgv = (app: StepApp, ...args: string[]) => [
  ...FROM_SOURCE,
  `${app.relativeDir}/src/cli/main.ts`,
  ...args,
];

/** The repository's scratch directory: ignored by git (/tmp/ in .gitignore), so by Biome too. */
export const SCRATCH_DIR = 'tmp';

/** Where the printed steps put the app's service definition, relative to the root. */
export const serviceDefinitionFile = (app: Pick<StepApp, 'name'>) =>
  `${SCRATCH_DIR}/${app.name}.json`;

/** The built client, as npm links it into node_modules/.bin; --no: never fetch a same-named package. */
export const builtClientArgv = (app: StepApp, ...args: string[]) => [
  'npx',
  '--no',
  app.executables.client,
  ...args,
];

export function nextSteps(app: StepApp, installed: boolean): NextStep[] {
  const config = serviceDefinitionFile(app);
  return [
    ...(installed
      ? []
      : [
          {
            say: `link ${app.packageName} and record it in package-lock.json (skipped: --no-install)`,
            argv: ['npm', 'install'],
          },
        ]),
    {
      say: 'its tests (npm test runs them too)',
      argv: ['npx', 'vitest', 'run', '--project', app.name, '--project', `${app.name}:int`],
    },
    {
      say: `its broker service definition, in ${SCRATCH_DIR}/ (ignored by git)`,
      argv: ['mkdir', '-p', SCRATCH_DIR],
    },
    { argv: serviceDefinitionArgv(app), stdoutTo: config },
    {
      say: 'a broker that routes to it (built: handoff-broker serve --config-file …)',
      argv: brokerServeArgv(config),
      background: true,
    },
    {
      say: `the client; the broker starts ${app.executables.daemon} on demand`,
      argv: clientArgv(app, 'set', 'greeting', 'hello'),
    },
    {
      say: `the same client built, as npm links it: ${app.executables.client} (build everything: the packages it imports run from their dist/)`,
      argv: ['npm', 'run', 'build'],
    },
    { argv: builtClientArgv(app, 'get', 'greeting') },
    {
      say: `make it yours: replace src/kv-store.ts and src/kv-service.ts, edit proto/${app.forms.snake}_v1.proto, then npm run generate -w ${app.packageName}`,
    },
  ];
}

/** Quotes for a POSIX shell only where needed. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function renderNextSteps(steps: readonly NextStep[]): string {
  return steps
    .map((step) => {
      const comment = step.say === undefined ? '' : `  # ${step.say}\n`;
      if (!step.argv) return comment;
      const command = [
        step.argv.map(shellQuote).join(' '),
        ...(step.stdoutTo ? [`> ${shellQuote(step.stdoutTo)}`] : []),
        ...(step.background ? ['&'] : []),
      ].join(' ');
      return `${comment}  ${command}\n`;
    })
    .join('');
}
