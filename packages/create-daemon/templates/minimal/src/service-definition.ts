// What a broker needs to start this daemon on demand: a service definition
// whose command runs src/daemon-main.ts through tsx. The broker adds the
// environment daemon-main reads (HANDOFF_ENDPOINT, HANDOFF_BROKER_CONTROL,
// HANDOFF_SERVICE_NAME).
import { join } from 'node:path';
import { SERVICE_NAME, SERVICE_VERSION } from './service.js';

const projectDir = join(import.meta.dirname, '..');

export function serviceDefinition(options: { idleTimeoutSecs?: number } = {}) {
  return {
    name: SERVICE_NAME,
    version: SERVICE_VERSION,
    command: process.execPath,
    args: ['--import', 'tsx', join(projectDir, 'src', 'daemon-main.ts')],
    // `--import tsx` resolves from here: this project's node_modules.
    cwd: projectDir,
    env: {},
    handoff: true,
    // A cold start through tsx takes a second or two.
    readyTimeoutMs: 30_000,
    ...(options.idleTimeoutSecs === undefined ? {} : { idleTimeoutSecs: options.idleTimeoutSecs }),
  };
}
