#!/usr/bin/env node
// Regenerates src/generated/broker_v1.{js,d.ts} from proto/ (see
// tools/codegen). The output is committed; test/generated.test.ts
// regenerates into a temp dir and fails when the two differ.
//   node scripts/generate.mjs [--out DIR]
import { join } from 'node:path';
import { generateStaticModule } from '@handoff/codegen';

generateStaticModule({
  packageDir: join(import.meta.dirname, '..'),
  baseName: 'broker_v1',
  root: 'handoff_broker_v1',
  argv: process.argv.slice(2),
});
