// Package-shape rules: the protocol package stays pure (no node: imports, so
// it runs anywhere) and index.ts only re-exports.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const src = join(import.meta.dirname, '..', 'src');
const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
  (f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'),
);

describe('package shape', () => {
  it('imports no node: module anywhere in src/', () => {
    for (const file of files) {
      const text = readFileSync(join(src, file), 'utf8');
      expect(text, file).not.toMatch(/from\s+['"](node:|fs|path|os|net|child_process|crypto)['"/]/);
      expect(text, file).not.toMatch(/\brequire\(/);
    }
  });

  it('index.ts only re-exports', () => {
    const statements = readFileSync(join(src, 'index.ts'), 'utf8')
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const statement of statements) expect(statement).toMatch(/^export (type )?(\{|\*)/);
  });
});
