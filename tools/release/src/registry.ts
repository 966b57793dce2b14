// A throwaway npm registry for release checks: verdaccio on a loopback port
// with its storage in a temporary directory. Our @handoff/* names are served
// only from what we publish to it (never proxied, so a same-named package on
// the public registry can't stand in for ours); everything else is proxied
// from the public registry, as a user's install would see it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..', '..');

export interface Registry {
  /** http://127.0.0.1:<port>/ */
  readonly url: string;
  /** An .npmrc that points npm at this registry with a publish token. */
  readonly userconfig: string;
  /** A scratch directory removed by stop(); callers may make temp projects in it. */
  readonly dir: string;
  /** npm's cache for every install against this registry (kept apart from the user's). */
  readonly cache: string;
  /** Environment for npm commands that must use this registry and nothing else. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** Publishes every public workspace package, the way a release does. */
  publishAll(): Promise<PublishResult>;
  stop(): Promise<void>;
}

export interface PublishResult {
  readonly command: string;
  readonly output: string;
}

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly code: 'START' | 'USER' | 'PUBLISH',
    message: string,
  ) {
    super(message);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function config(dir: string): string {
  return [
    `storage: ${join(dir, 'storage')}`,
    'auth:',
    '  htpasswd:',
    `    file: ${join(dir, 'htpasswd')}`,
    '    max_users: 10',
    'uplinks:',
    '  npmjs:',
    '    url: https://registry.npmjs.org/',
    '    timeout: 60s',
    '    max_fails: 5',
    'packages:',
    "  '@handoff/*':",
    '    access: $all',
    '    publish: $authenticated',
    '    unpublish: $authenticated',
    "  '**':",
    '    access: $all',
    '    publish: $authenticated',
    '    proxy: npmjs',
    'log: { type: stdout, format: json, level: warn }',
    'max_body_size: 200mb',
    '',
  ].join('\n');
}

async function waitForPing(url: string, child: ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) {
      throw new RegistryError('START', `verdaccio exited with ${child.exitCode} before answering`);
    }
    try {
      const reply = await fetch(new URL('-/ping', url));
      if (reply.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new RegistryError('START', `verdaccio did not answer ${url}-/ping within ${deadlineMs} ms`);
}

/** Starts verdaccio and creates a publishing user; stop() removes everything it made. */
export async function startRegistry(): Promise<Registry> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-registry-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, config(dir));
  const bin = join(repoRoot, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
  const child = spawn(
    process.execPath,
    [bin, '--config', configPath, '--listen', `127.0.0.1:${port}`],
    {
      // The machine may reach the public registry through a TLS-inspecting
      // proxy whose CA only the system bundle has; npm is told so by its
      // cafile setting, verdaccio (plain Node) by this.
      env: { ...process.env, NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitForPing(url, child, 30_000);
    const user = await fetch(new URL('-/user/org.couchdb.user:release', url), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'release', password: 'release-e2e', type: 'user', roles: [] }),
    });
    const body = (await user.json()) as { token?: string };
    if (!user.ok || typeof body.token !== 'string') {
      throw new RegistryError('USER', `verdaccio refused the publishing user: ${user.status}`);
    }
    const userconfig = join(dir, 'npmrc');
    const host = url.replace(/^http:/, '');
    writeFileSync(userconfig, `registry=${url}\n${host}:_authToken=${body.token}\n`);
    const cache = join(dir, 'npm-cache');

    const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
      const clean: NodeJS.ProcessEnv = {};
      // npm lifecycle variables from an outer `npm run` would override the
      // registry and the userconfig; start from a clean slate.
      for (const [key, value] of Object.entries(process.env)) {
        if (!/^npm_/i.test(key)) clean[key] = value;
      }
      return {
        ...clean,
        npm_config_userconfig: userconfig,
        npm_config_registry: url,
        npm_config_cache: cache,
        npm_config_update_notifier: 'false',
        npm_config_fund: 'false',
        npm_config_audit: 'false',
        ...extra,
      };
    };

    const publishAll = async (): Promise<PublishResult> => {
      // `changeset publish` is the release command: it publishes every
      // non-private package whose version the registry lacks.
      const args = ['changeset', 'publish', '--no-git-tag'];
      const run = spawnSync('npx', args, {
        cwd: repoRoot,
        env: env(),
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      const output = `${run.stdout}${run.stderr}`;
      if (run.status !== 0) {
        throw new RegistryError(
          'PUBLISH',
          `npx ${args.join(' ')} failed (${run.status}):\n${output}`,
        );
      }
      return { command: `npx ${args.join(' ')}`, output };
    };

    return { url, userconfig, dir, cache, env, publishAll, stop };
  } catch (err) {
    await stop();
    if (err instanceof RegistryError) err.message += `\nverdaccio log:\n${log}`;
    throw err;
  }
}
