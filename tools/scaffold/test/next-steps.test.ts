import { nameForms } from '@handoff/create-daemon/rename';
import { describe, expect, it } from 'vitest';
import {
  nextSteps,
  renderNextSteps,
  serviceDefinitionArgv,
  shellQuote,
} from '../src/next-steps.js';

const app = {
  name: 'sensor-hub',
  forms: nameForms('sensor-hub'),
  relativeDir: 'apps/sensor-hub',
  packageName: '@handoff/sensor-hub',
  executables: { client: 'sensor-hub', daemon: 'sensor-hub-daemon' },
};

describe('nextSteps', () => {
  it('says to install first only when the install was skipped', () => {
    expect(nextSteps(app, false)[0]?.argv).toEqual(['npm', 'install']);
    expect(nextSteps(app, true).some((s) => s.argv?.join(' ') === 'npm install')).toBe(false);
  });

  it('writes nothing but under tmp/, which git and Biome ignore', () => {
    const written = nextSteps(app, false).flatMap((s) => (s.stdoutTo ? [s.stdoutTo] : []));
    expect(written).toEqual(['tmp/sensor-hub.json']);
  });

  it('prints commands a POSIX shell runs as they are', () => {
    expect(renderNextSteps(nextSteps(app, true))).toBe(
      [
        '  # its tests (npm test runs them too)',
        '  npx vitest run --project sensor-hub --project sensor-hub:int',
        '  # its broker service definition, in tmp/ (ignored by git)',
        '  mkdir -p tmp',
        `  node --conditions=@handoff/source --import tsx -e 'import("./apps/sensor-hub/src/service-definition.ts").then((m) => console.log(JSON.stringify(m.sensorHubServiceDefinition({ idleTimeoutSecs: 300 }))))' > tmp/sensor-hub.json`,
        '  # a broker that routes to it (built: handoff-broker serve --config-file …)',
        '  node --conditions=@handoff/source --import tsx packages/broker/src/cli/main.ts serve --config-file tmp/sensor-hub.json &',
        '  # the client; the broker starts sensor-hub-daemon on demand',
        '  node --conditions=@handoff/source --import tsx apps/sensor-hub/src/cli/main.ts set greeting hello',
        '  # the same client built, as npm links it: sensor-hub (build everything: the packages it imports run from their dist/)',
        '  npm run build',
        '  npx --no sensor-hub get greeting',
        '  # make it yours: replace src/kv-store.ts and src/kv-service.ts, edit proto/sensor_hub_v1.proto, then npm run generate -w @handoff/sensor-hub',
        '',
      ].join('\n'),
    );
  });

  it('calls the service-definition helper by the app’s camelCase name', () => {
    expect(serviceDefinitionArgv(app, 7).at(-1)).toContain(
      'm.sensorHubServiceDefinition({ idleTimeoutSecs: 7 })',
    );
  });
});

describe('shellQuote', () => {
  it.each([
    ['plain-word_1.json', 'plain-word_1.json'],
    ['--conditions=@handoff/source', '--conditions=@handoff/source'],
    ['two words', `'two words'`],
    [`it's`, `'it'\\''s'`],
    ['', `''`],
  ])('%j → %s', (arg, quoted) => {
    expect(shellQuote(arg)).toBe(quoted);
  });
});
