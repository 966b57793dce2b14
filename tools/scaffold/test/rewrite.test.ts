import {
  createRewritePlan,
  DEMO_DAEMON_SOURCE,
  identifierClashes,
  leftovers,
  nameForms,
  rewritePath,
  rewriteText,
} from '@handoff/create-daemon/rename';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { privateId, validName } from './arbitraries.js';

const planFor = (name: string, protocolId = 0xf0a2) =>
  createRewritePlan(DEMO_DAEMON_SOURCE, { forms: nameForms(name), protocolId });

// Every way apps/demo-daemon spells itself, in the contexts it uses them.
const TEMPLATE_TEXT = `# demo-daemon (\`@handoff/demo-daemon\`, private)

A small cache daemon, and \`demo-kv\`, its client CLI, and the template new
daemons are copied from.
import { DemoKvClient, DEMO_KV_SERVICE_NAME, demoKvServiceDefinition } from './client.js';
export async function startDemoDaemon(options: DemoDaemonOptions) {}
const USAGE = \`Usage: demo-daemon [--endpoint PATH]\`;
pino({ name: 'demo-daemon' });
async function demoKv(argv: string[]) {}
await demoKv(['get']);
package handoff.demo_kv.v1;
const pb = handoff.demo_kv.v1; 'handoff_demo_kv_v1'; join(out, 'demo_kv_v1.js');
definePayloadProtocol('demo-kv', 0xf0d0);
 * 0xF0D0 ("D0" for demo): in the private-use range
bad.request(0xf0d1, new Uint8Array(0)); // not 0xF0D1 either
tempDir('demo-int'); // The demo daemon as it runs
npx vitest run --project demo-daemon --project demo-daemon:int
test/demo-daemon.int.test.ts, apps/demo-daemon/src, /apps\\/demo-daemon\\/src/
// Shared by the demo-daemon tests
## How it is wired (the template)
### Copying it for a new daemon

Rename the service (\`DEMO_KV_SERVICE_NAME\`), pick your own private-use
payload protocol id, rename the proto package and the pbjs \`--root\`, and
replace the store.
`;

describe('rewriteText', () => {
  it('rewrites every spelling of the template in its context', () => {
    expect(
      rewriteText(TEMPLATE_TEXT, planFor('sensor-hub')),
    ).toBe(`# sensor-hub (\`@handoff/sensor-hub\`, private)

A small cache daemon, and \`sensor-hub\`, its client CLI.
import { SensorHubClient, SENSOR_HUB_SERVICE_NAME, sensorHubServiceDefinition } from './client.js';
export async function startSensorHubDaemon(options: SensorHubDaemonOptions) {}
const USAGE = \`Usage: sensor-hub-daemon [--endpoint PATH]\`;
pino({ name: 'sensor-hub-daemon' });
async function sensorHubExe(argv: string[]) {}
await sensorHubExe(['get']);
package handoff.sensor_hub.v1;
const pb = handoff.sensor_hub.v1; 'handoff_sensor_hub_v1'; join(out, 'sensor_hub_v1.js');
definePayloadProtocol('sensor-hub', 0xf0a2);
 * 0xF0A2: in the private-use range
bad.request(0xf0a3, new Uint8Array(0)); // not 0xF0A3 either
tempDir('sensor-hub-int'); // The sensor-hub daemon as it runs
npx vitest run --project sensor-hub --project sensor-hub:int
test/sensor-hub.int.test.ts, apps/sensor-hub/src, /apps\\/sensor-hub\\/src/
// Shared by the sensor-hub tests
## How it is wired
### Making it yours

\`npm run new-daemon\` gave it its own service name, private-use payload
protocol id, proto package and pbjs \`--root\`. Replace the store.
`);
  });

  it('rewrites once: a new name that contains a template name is left alone', () => {
    const plan = planFor('demo-kv-2', 0xf0d1);
    expect(rewriteText("'demo-kv' DemoKvClient 0xf0d0 0xf0d1", plan)).toBe(
      "'demo-kv-2' DemoKv2Client 0xf0d1 0xf0d0",
    );
    expect(leftovers(TEMPLATE_TEXT, plan)).toEqual([]);
  });

  it('leaves behind no template spelling, for any name and id', () => {
    fc.assert(
      fc.property(validName, privateId, (name, id) => {
        const plan = planFor(name, id);
        const out = rewriteText(TEMPLATE_TEXT, plan);
        expect(leftovers(TEMPLATE_TEXT, plan)).toEqual([]);
        // Read back with a fresh eye: only the new name could still spell "demo".
        plan.trace.lastIndex = 0;
        if (!name.includes('demo') && id >> 1 !== 0xf0d0 >> 1) expect(out).not.toMatch(plan.trace);
        expect(out).toContain(`@handoff/${name}`);
      }),
    );
  });

  it('leaves text without template spellings as it is', () => {
    const plain = fc.string({
      unit: fc.constantFrom(...'abcefgkvxyzKV-_ .()/\n0123456789'.split('')),
    });
    fc.assert(
      fc.property(validName, plain, (name, text) => {
        expect(rewriteText(text, planFor(name))).toBe(text);
      }),
    );
  });

  it('turns the template identifiers into identifiers', () => {
    const identifiers = ['DemoKvClient', 'DEMO_KV_SERVICE_NAME', 'demoKvServiceDefinition'];
    fc.assert(
      fc.property(
        validName,
        fc.constantFrom(...identifiers, 'startDemoDaemon', 'demoKv'),
        (name, id) => {
          expect(rewriteText(id, planFor(name))).toMatch(/^[A-Za-z_$][\w$]*$/);
        },
      ),
    );
  });
});

describe('leftovers', () => {
  it('reports a spelling no rule covers, with its line', () => {
    const text = 'fine\nconst demoStore = new DemoStore(); // the DEMO store\n0xF0D0 is fine';
    expect(leftovers(text, planFor('sensor-hub'))).toEqual([
      { line: 2, text: 'const demoStore = new DemoStore(); // the DEMO store' },
    ]);
  });

  it('keeps line numbers across a phrase that spans lines', () => {
    const text =
      'Rename the service (`DEMO_KV_SERVICE_NAME`), pick your own private-use\npayload protocol id, rename the proto package and the pbjs `--root`, and\nreplace it\ndemos are fine, demoX is not';
    expect(leftovers(text, planFor('x'))).toEqual([
      { line: 4, text: 'demos are fine, demoX is not' },
    ]);
  });
});

describe('rewritePath', () => {
  it('renames files and directories that carry the template name', () => {
    const plan = planFor('sensor-hub');
    expect(rewritePath('proto/demo_kv_v1.proto', plan)).toBe('proto/sensor_hub_v1.proto');
    expect(rewritePath('src/generated/demo_kv_v1.d.ts', plan)).toBe(
      'src/generated/sensor_hub_v1.d.ts',
    );
    expect(rewritePath('test/demo-daemon.int.test.ts', plan)).toBe('test/sensor-hub.int.test.ts');
    expect(rewritePath('src/kv-store.ts', plan)).toBe('src/kv-store.ts');
  });
});

describe('identifierClashes', () => {
  const files = [
    {
      path: 'src/client.ts',
      text: 'export type DemoKvErrorCode = KvErrorCode | "BAD"; class DemoKvClient {}',
    },
    { path: 'test/harness.ts', text: 'export class LineClient {} // handoff.demo_kv.v1' },
  ];

  it('finds a renamed identifier that lands on one the template keeps', () => {
    expect(identifierClashes(files, planFor('kv'))).toEqual([
      { file: 'src/client.ts', from: 'DemoKvErrorCode', to: 'KvErrorCode' },
    ]);
    expect(identifierClashes(files, planFor('line'))).toEqual([
      { file: 'src/client.ts', from: 'DemoKvClient', to: 'LineClient' },
    ]);
  });

  it('ignores the bare spellings (namespaces, properties) and names that clash with nothing', () => {
    // handoff.demo_kv.v1 becomes handoff.client.v1: a property, not a clash with `client`.
    expect(
      identifierClashes([...files, { path: 'a.ts', text: 'const client = 1;' }], planFor('client')),
    ).toEqual([]);
    expect(identifierClashes(files, planFor('sensor-hub'))).toEqual([]);
  });
});
