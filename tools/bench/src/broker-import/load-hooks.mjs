// The hooks behind load-recorder.mjs. They run off the main thread and
// write synchronously, so a module's line is in the log before it runs.
import { appendFileSync } from 'node:fs';

let log;

export function initialize(data) {
  log = data.log;
}

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:')) appendFileSync(log, `${url}\n`);
  return nextLoad(url, context);
}
