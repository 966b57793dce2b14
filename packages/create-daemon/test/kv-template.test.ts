import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeKvTemplate } from '../src/kv-template.js';
import { repoRoot, tempDir } from './harness.js';

const demo = join(repoRoot, 'apps', 'demo-daemon');
const extra = join(import.meta.dirname, '..', 'templates', 'kv-extra');

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir('kv');
});
afterEach(() => tmp.remove());

describe('makeKvTemplate', () => {
  it('takes the demo daemon, minus what reaches into the repository, plus its own files', () => {
    const files = makeKvTemplate(demo, extra);
    const paths = files.map((f) => f.path);
    expect(paths).toContain('src/daemon.ts');
    expect(paths).toContain('src/serve.ts');
    expect(paths).toContain('_gitignore');
    expect(paths).not.toContain('test/line-protocol.fuzz.test.ts');
    const tsconfig = files.find((f) => f.path === 'tsconfig.json')!;
    expect(tsconfig.content.toString()).not.toContain('extends');
    const harness = files.find((f) => f.path === 'test/harness.ts')!.content.toString();
    expect(harness).toContain(`export const tsxArgs = ['--import', 'tsx'];`);
  });

  it('fails, naming the file, when the demo daemon no longer holds a patched text', () => {
    const copy = tmp.path('demo-daemon');
    cpSync(demo, copy, { recursive: true, filter: (s) => !/node_modules|\/dist$/.test(s) });
    const file = join(copy, 'test', 'harness.ts');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace("'--conditions=@handoff/source', ", "'--x', "),
    );
    expect(() => makeKvTemplate(copy, extra)).toThrow(
      expect.objectContaining({
        code: 'TEMPLATE_DRIFT',
        message: expect.stringContaining('test/harness.ts'),
      }),
    );
  });

  it('fails when a kept file reaches outside the project', () => {
    const copy = tmp.path('demo-daemon');
    cpSync(demo, copy, { recursive: true, filter: (s) => !/node_modules|\/dist$/.test(s) });
    writeFileSync(join(copy, 'src', 'extra.ts'), "export * from '../../../tools/x.js';\n");
    expect(() => makeKvTemplate(copy, extra)).toThrow(/src\/extra\.ts still reaches outside/);
  });
});
