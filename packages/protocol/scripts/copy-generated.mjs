#!/usr/bin/env node
// tsc does not emit the generated .js/.d.ts (they are not TypeScript
// sources), so the build copies them beside the compiled facade.
import { cpSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
cpSync(join(pkg, 'src', 'generated'), join(pkg, 'dist', 'generated'), { recursive: true });
