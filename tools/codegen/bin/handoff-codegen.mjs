#!/usr/bin/env node
// `handoff-codegen <base-name> <root> [--out DIR]`, run from a package's own
// directory (npm scripts do): regenerates src/generated/<base-name>.{js,d.ts}
// from that package's proto/. Packages call this as a dev-dependency command,
// so no shipped package imports anything from tools/.
import { generateStaticModule } from '../protobufjs-static.mjs';

const [baseName, root, ...rest] = process.argv.slice(2);
if (!baseName || !root || baseName.startsWith('-') || root.startsWith('-')) {
  console.error('Usage: handoff-codegen <base-name> <protobufjs-root> [--out DIR]');
  process.exit(2);
}
generateStaticModule({ packageDir: process.cwd(), baseName, root, argv: rest });
