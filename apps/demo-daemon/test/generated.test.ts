// The committed generated code must be exactly what `npm run generate`
// makes from proto/ today: a .proto edited without regenerating fails here.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { app, tempDir } from './harness.js';

// `npm run generate` is `handoff-codegen demo_kv_v1 handoff_demo_kv_v1`, run in the app.
const codegen = join(app, '..', '..', 'node_modules', '.bin', 'handoff-codegen');
const out = tempDir('demo-gen');
afterAll(() => out.remove());

describe('generated code', () => {
  it('is identical to a fresh generation from proto/', { timeout: 60_000 }, () => {
    execFileSync(codegen, ['demo_kv_v1', 'handoff_demo_kv_v1', '--out', out.dir], {
      cwd: app,
      stdio: 'pipe',
    });
    const committed = join(app, 'src', 'generated');
    expect(readdirSync(out.dir).sort()).toEqual(readdirSync(committed).sort());
    for (const file of readdirSync(out.dir)) {
      const fresh = readFileSync(join(out.dir, file), 'utf8');
      expect(
        readFileSync(join(committed, file), 'utf8') === fresh,
        `${file} is stale: run npm run generate -w @handoff/demo-daemon`,
      ).toBe(true);
    }
  });
});
