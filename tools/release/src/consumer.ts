// A user's project outside the repository: an empty directory, npm pointed at
// the test registry, and a PATH with no C/C++ compiler and no make, so an
// install that would fall back to compiling the addon fails instead of
// quietly succeeding on a developer's machine.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Registry } from './registry.ts';

/** Build tools a source build of @handoff/fdpass needs; none may be reachable. */
const BUILD_TOOL =
  /^(?:[\w.-]+-)?(?:g\+\+|gcc|c\+\+|cc|clang|clang\+\+|c89-gcc|c99-gcc)(?:-\d+)?$|^g?make$/;

export function isBuildTool(name: string): boolean {
  return BUILD_TOOL.test(name);
}

/**
 * A directory of symlinks to every executable on `path` except compilers and
 * make: the rest of the system (sh, git, python3, tar…) stays usable.
 */
export function pathWithoutBuildTools(into: string, path: string = process.env.PATH ?? ''): string {
  mkdirSync(into, { recursive: true });
  for (const dir of path.split(delimiter)) {
    if (dir === '' || !existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (isBuildTool(name) || existsSync(join(into, name))) continue;
      const target = join(dir, name);
      try {
        if (!statSync(target).isFile()) continue;
      } catch {
        continue; // a dangling link
      }
      symlinkSync(target, join(into, name));
    }
  }
  return into;
}

export interface Run {
  readonly status: number | null;
  readonly output: string;
  readonly ms: number;
}

export class ConsumerProject {
  constructor(
    readonly dir: string,
    private readonly registry: Registry,
    private readonly path: string,
  ) {}

  static create(registry: Registry, name: string, noBuildTools: string): ConsumerProject {
    const dir = join(registry.dir, 'consumers', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'package.json'),
      `${JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
    );
    return new ConsumerProject(dir, registry, noBuildTools);
  }

  /** Runs a command in the project with the registry's npm settings and the compiler-free PATH. */
  run(command: string, args: readonly string[], timeoutMs = 300_000): Run {
    const started = performance.now();
    const result: SpawnSyncReturns<string> = spawnSync(command, args, {
      cwd: this.dir,
      env: this.registry.env({ PATH: this.path }),
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? `\n${result.error.message}` : ''}`;
    return { status: result.status, output, ms: performance.now() - started };
  }

  /** Like run(), but throws with the command's output when it fails. */
  must(command: string, args: readonly string[], timeoutMs?: number): Run {
    const run = this.run(command, args, timeoutMs);
    if (run.status !== 0) {
      throw new Error(
        `${command} ${args.join(' ')} exited ${run.status} in ${this.dir}:\n${run.output}`,
      );
    }
    return run;
  }
}
