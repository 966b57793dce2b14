// `npm run client -- [--socket PATH] [TEXT...]`: one request through the
// broker, its answer on stdout. Exit codes: 0 answered, 1 failed, 2 usage.
import { parseArgs } from 'node:util';
import { ask } from './client.js';

const config = { options: { socket: { type: 'string' } }, allowPositionals: true } as const;
let parsed: ReturnType<typeof parseArgs<typeof config>>;
try {
  parsed = parseArgs(config);
} catch (error) {
  console.error(`${(error as Error).message}\nusage: npm run client -- [--socket PATH] [TEXT...]`);
  process.exit(2);
}
try {
  const { answer, route } = await ask(parsed.positionals.join(' '), {
    brokerPath: parsed.values.socket,
  });
  console.error(`(connected by ${route})`);
  console.log(answer);
} catch (error) {
  const { code, message } = error as { code?: string; message: string };
  console.error(`client: ${code ? `${code}: ` : ''}${message}`);
  process.exitCode = 1;
}
