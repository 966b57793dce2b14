// What a repository already holds that a new daemon must not collide with:
// the directories under apps/, packages/ and tools/, their package names
// and executables, and each app's service name and payload protocol ids —
// from its package.json `handoff` metadata and from the
// definePayloadProtocol calls in its sources. Reads files; decides nothing.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type ProtocolIdUse, parseProtocolId, protocolIdsInSource } from './protocol-id.js';
import { readHandoffMetadata } from './tailor.js';

export const WORKSPACE_GROUPS = ['apps', 'packages', 'tools'] as const;

export interface WorkspaceProject {
  readonly group: (typeof WORKSPACE_GROUPS)[number];
  /** The directory's name under its group. */
  readonly dir: string;
  readonly packageName: string | undefined;
  readonly bins: readonly string[];
  /** From `handoff.service` in package.json. */
  readonly service: string | undefined;
}

export interface WorkspaceFacts {
  readonly root: string;
  readonly projects: readonly WorkspaceProject[];
  /** Every entry in apps/, directories or not: none may be overwritten. */
  readonly appEntries: readonly string[];
  readonly protocolIds: readonly ProtocolIdUse[];
}

export class WorkspaceError extends Error {
  override readonly name = 'WorkspaceError';
  readonly code = 'INVALID_WORKSPACE';
}

function readManifest(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new WorkspaceError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}

function binNames(manifest: Record<string, unknown>): string[] {
  const { bin, name } = manifest;
  if (typeof bin === 'string' && typeof name === 'string') return [name.replace(/^@[^/]+\//, '')];
  return typeof bin === 'object' && bin !== null ? Object.keys(bin) : [];
}

/** TypeScript and JavaScript sources under src/, generated code and build output aside. */
function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!['generated', 'node_modules', 'dist'].includes(entry.name)) {
        files.push(...sourceFiles(path));
      }
    } else if (entry.isFile() && /\.(?:[cm]?ts|[cm]?js)$/.test(entry.name)) {
      files.push(path);
    }
  }
  return files;
}

function appProtocolIds(root: string, app: string, manifest: Record<string, unknown> | undefined) {
  const dir = join(root, 'apps', app);
  const uses: ProtocolIdUse[] = [];
  const declared = readHandoffMetadata(manifest)?.payloadProtocol;
  if (declared !== undefined) {
    try {
      uses.push({ id: parseProtocolId(declared), app, where: 'package.json' });
    } catch (error) {
      throw new WorkspaceError(
        `apps/${app}/package.json: handoff.payloadProtocol: ${(error as Error).message}`,
      );
    }
  }
  for (const file of sourceFiles(join(dir, 'src'))) {
    for (const id of protocolIdsInSource(readFileSync(file, 'utf8'))) {
      uses.push({ id, app, where: relative(dir, file) });
    }
  }
  return uses;
}

export function readWorkspace(root: string): WorkspaceFacts {
  const projects: WorkspaceProject[] = [];
  const protocolIds: ProtocolIdUse[] = [];
  let appEntries: string[] = [];
  for (const group of WORKSPACE_GROUPS) {
    const groupDir = join(root, group);
    if (!existsSync(groupDir)) continue;
    const entries = readdirSync(groupDir).sort();
    if (group === 'apps') appEntries = entries;
    for (const dir of entries) {
      if (dir.startsWith('.') || !statSync(join(groupDir, dir)).isDirectory()) continue;
      const manifest = readManifest(join(groupDir, dir, 'package.json'));
      projects.push({
        group,
        dir,
        packageName: typeof manifest?.name === 'string' ? manifest.name : undefined,
        bins: manifest ? binNames(manifest) : [],
        service: readHandoffMetadata(manifest)?.service,
      });
      if (group === 'apps') protocolIds.push(...appProtocolIds(root, dir, manifest));
    }
  }
  return { root, projects, appEntries, protocolIds };
}
