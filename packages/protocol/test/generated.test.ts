// The committed generated code must be exactly what `npm run generate`
// produces from proto/ today (grpc-node's validate-golden habit).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const pkg = join(import.meta.dirname, '..');
// `npm run generate` is `handoff-codegen broker_v1 handoff_broker_v1`, run in the package.
const codegen = join(pkg, '..', '..', 'node_modules', '.bin', 'handoff-codegen');
const out = mkdtempSync(join(tmpdir(), 'handoff-gen-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('generated code', () => {
  it('is identical to a fresh generation from proto/', { timeout: 60_000 }, () => {
    execFileSync(codegen, ['broker_v1', 'handoff_broker_v1', '--out', out], {
      cwd: pkg,
      stdio: 'pipe',
    });
    const committed = join(pkg, 'src', 'generated');
    expect(readdirSync(out).sort()).toEqual(readdirSync(committed).sort());
    for (const file of readdirSync(out)) {
      const fresh = readFileSync(join(out, file), 'utf8');
      expect(
        readFileSync(join(committed, file), 'utf8') === fresh,
        `${file} is stale: run npm run generate`,
      ).toBe(true);
    }
  });
});
