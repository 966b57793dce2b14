// What a case's line says about its target, beyond `meets_target`: whether a
// missed target could have been met at all in this run. Some targets sit
// below a floor (or above a ceiling) that the same run measures: a Node
// handoff that reads nothing, node:cluster with no process in between. When
// that floor itself misses the target, no implementation of ours could have
// met it on this machine in this run, and the line says so with the floor's
// figure beside it — it never turns a miss into a pass (`meets_target`
// stays false).

/**
 * - `met`: every part of the target was met.
 * - `out_of_reach`: every part missed was also missed by its floor or
 *   ceiling, measured in the same run.
 * - `undecidable`: some part missed was within the drift of its A/A control
 *   (two identical servers differ by more than the target's tolerance), the
 *   rest out of reach: this run cannot tell.
 * - `missed`: a part was missed that its floor allowed.
 */
export type Verdict = 'met' | 'out_of_reach' | 'undecidable' | 'missed';

/** One part of a case's target, as measured in one run. */
export interface TargetPart {
  met: boolean;
  /** false: the same run's floor (or ceiling) misses this part too. */
  reachable?: boolean;
  /** false: the same run's A/A control drifts wider than this part's tolerance. */
  resolvable?: boolean;
}

export function verdictOf(parts: readonly TargetPart[]): Verdict {
  const missed = parts.filter((p) => !p.met);
  if (missed.length === 0) return 'met';
  if (missed.every((p) => p.reachable === false)) return 'out_of_reach';
  if (missed.every((p) => p.reachable === false || p.resolvable === false)) return 'undecidable';
  return 'missed';
}

/**
 * Whether `ratio` (ours ÷ its baseline) sits further from 1 than an A/A
 * control of the same run: `aaRatio` is the baseline measured against
 * itself (the same route twice, or two identical servers), so a ratio no
 * further from 1 than it is a difference this run cannot tell from noise.
 * For a part whose tolerance is zero ("below", "at least as fast"), a miss
 * inside that drift is undecidable, not missed.
 */
export function beyondAaDrift(ratio: number, aaRatio: number): boolean {
  const distance = (r: number) => Math.max(r, 1 / r);
  return distance(ratio) > distance(aaRatio);
}
