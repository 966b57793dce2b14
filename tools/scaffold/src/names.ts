// Whether a workspace already has a new daemon's name. The name's own rules
// and spellings are shared with create-daemon (@handoff/create-daemon/rename);
// this decides from facts workspace.ts read, without touching a file.
import type { WorkspaceFacts } from './workspace.js';

/**
 * Why the workspace already has this name, or undefined: an entry in apps/,
 * a workspace directory, a package name, an executable (npm links every
 * workspace's into one node_modules/.bin) or a service name. Refusals: the
 * name is fine, just taken here.
 */
export function nameConflict(name: string, facts: WorkspaceFacts): string | undefined {
  if (facts.appEntries.includes(name)) return `apps/${name} already exists; nothing was changed`;
  const executables = [name, `${name}-daemon`];
  for (const project of facts.projects) {
    const where = `${project.group}/${project.dir}`;
    if (project.group !== 'apps' && project.dir === name) {
      return `${where} already has that name; a new daemon needs one no workspace uses`;
    }
    if (project.packageName === `@handoff/${name}`) {
      return `the package name @handoff/${name} is taken by ${where}`;
    }
    if (project.service === name) return `the service name ${name} is taken by ${where}`;
    const bin = executables.find((candidate) => project.bins.includes(candidate));
    if (bin !== undefined) return `the executable ${bin} is taken by ${where}`;
  }
  return undefined;
}
