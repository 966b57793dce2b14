#!/usr/bin/env node
// tsc compiles only TypeScript, so the build copies the generated protobufjs
// module (and its declarations) to where the compiled kv-protocol.js imports it.
import { cpSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
cpSync(join(app, 'src', 'generated'), join(app, 'dist', 'generated'), { recursive: true });
