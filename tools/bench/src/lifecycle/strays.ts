// Cleanup after a failed case: any process whose environment names the
// case's temporary directory (brokers, successors, daemons) is SIGKILLed,
// so a broken run leaves nothing behind on the shared machine.
import { readdirSync, readFileSync } from 'node:fs';

export function killStrays(dir: string): number[] {
  const killed: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (!environ.includes(dir)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // Gone already.
    }
  }
  return killed;
}
