// What to do once apps/<name> exists, sans-io: test it, route to it through
// a broker, use its client — as commands run from the repository root, from
// source (no build needed). The integration test runs these very argv
// arrays, so the printed steps are known to work.
import type { GeneratedApp } from './generate.js';

/** Runs a TypeScript entry from source: workspace packages resolve to their src/, tsx compiles. */
export const FROM_SOURCE = ['node', '--conditions=@handoff/source', '--import', 'tsx'];

export interface NextStep {
  readonly say: string;
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

export function nextSteps(app: StepApp, installed: boolean): NextStep[] {
  const config = `${app.name}.json`;
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
    { say: 'its broker service definition', argv: serviceDefinitionArgv(app), stdoutTo: config },
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
      say: `built: ${app.executables.client} get greeting`,
      argv: clientArgv(app, 'get', 'greeting'),
    },
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
      if (!step.argv) return `  # ${step.say}\n`;
      const command = [
        step.argv.map(shellQuote).join(' '),
        ...(step.stdoutTo ? [`> ${shellQuote(step.stdoutTo)}`] : []),
        ...(step.background ? ['&'] : []),
      ].join(' ');
      return `  # ${step.say}\n  ${command}\n`;
    })
    .join('');
}
