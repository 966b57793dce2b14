// Whether this kernel schedules by autogroup (lifecycle/boot-priority.ts has
// nothing to do without it): the boot-priority tests skip, saying so, where
// it is off.
import { readFileSync } from 'node:fs';

export const autogroups = (() => {
  try {
    return readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
  } catch {
    return false;
  }
})();
