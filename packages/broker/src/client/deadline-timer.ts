// One timer for the deadlines of every connectService call in flight,
// rather than a setTimeout per call. A call usually ends long before its
// deadline, and Node's timers make that the expensive case: arming a timer
// for a duration with no list yet creates the list, keys it into a
// number-keyed map and the priority queue and re-arms libuv's timer, and
// clearing the last one undoes all of it. Counted with callgrind, that was
// about 5,000 instructions of each connect (setTimeout, clearTimeout and the
// map's slow keyed stores), some 4% of the client's share of a handoff.
// Here a call costs an array push and a swap-remove, with nothing
// allocated once the array has grown (a Set allocated a fresh table on
// each delete of its last entry); the timer is armed for the earliest
// deadline watched, and otherwise left alone.
//
// The timer is unref'd: it never keeps a process alive by itself. A call
// that is waiting always has something that does (its socket, or a
// back-off pause's own timer), and a timer left armed after the last call
// ended simply fires once, finds nothing and stops.

/** Something with a deadline: expire() runs once, at or after `expiresAt`, unless unwatched first. */
export interface Expiring {
  /** performance.now() at which it expires. */
  readonly expiresAt: number;
  expire(): void;
  /** Where it is in the watched list, -1 when not watched: this module's to set. */
  deadlineSlot: number;
}

const watched: Expiring[] = [];
let timer: NodeJS.Timeout | undefined;
/** The deadline the timer is armed for; Infinity when it is not armed. */
let armedFor = Infinity;

/** Expires `item` at its deadline unless unwatchDeadline(item) comes first. */
export function watchDeadline(item: Expiring): void {
  if (item.deadlineSlot >= 0) return;
  item.deadlineSlot = watched.length;
  watched.push(item);
  // Calls with one timeout come in deadline order: only a shorter timeout
  // (or the first call) moves the timer.
  if (item.expiresAt < armedFor) arm(item.expiresAt);
}

export function unwatchDeadline(item: Expiring): void {
  const slot = item.deadlineSlot;
  if (slot < 0) return;
  item.deadlineSlot = -1;
  const last = watched.pop()!;
  if (last !== item) {
    watched[slot] = last;
    last.deadlineSlot = slot;
  }
}

/** The longest delay setTimeout takes as given. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function arm(at: number): void {
  if (timer !== undefined) clearTimeout(timer);
  armedFor = at;
  // Node may fire a timer a little early by performance.now() (it counts from
  // the event loop's cached time): fire() then arms again for the rest.
  // Beyond setTimeout's 32-bit range Node would fire at once: wait the most
  // it takes, and fire() arms again for the rest.
  const wait = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(at - performance.now())));
  timer = setTimeout(fire, wait);
  timer.unref();
}

function fire(): void {
  timer = undefined;
  armedFor = Infinity;
  const now = performance.now();
  const due: Expiring[] = [];
  let next = Infinity;
  for (const item of watched) {
    if (item.expiresAt <= now) due.push(item);
    else if (item.expiresAt < next) next = item.expiresAt;
  }
  // Unwatched before any runs: expire() may watch or unwatch others.
  for (const item of due) unwatchDeadline(item);
  for (const item of due) item.expire();
  // expire() may have watched something sooner already (arm() is then done).
  if (next < armedFor) arm(next);
}

/** How many deadlines are watched (tests: none may be left once every call has ended). */
export function watchedDeadlines(): number {
  return watched.length;
}
