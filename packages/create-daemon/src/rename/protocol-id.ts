// Payload protocol ids as create-daemon and the in-repo scaffold spell and
// choose them, sans-io and without @handoff/protocol (create-daemon runs
// before anything is installed). The scaffold checks its choice against the
// registry and the workspace; a standalone project has no workspace to ask,
// so its id is derived from its name.

/** The private-use range of payload protocol ids (as @handoff/protocol's PRIVATE_USE_RANGE). */
export const PRIVATE_USE_MIN = 0xf000;
export const PRIVATE_USE_MAX = 0xffff;

/**
 * Never derived: 0xF000 is the id people reach for in experiments, and
 * 0xF0D0 is the demo daemon's (its tests also use 0xF0D1 as an id it does
 * not serve).
 */
export const AVOIDED_IDS: ReadonlySet<number> = new Set([0xf000, 0xf0d0, 0xf0d1]);

/** `0xF0A1` — how READMEs, package.json metadata and messages spell an id. */
export function formatProtocolId(id: number): string {
  return `0x${id.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** FNV-1a, 32 bits: a stable spread of names, the same on every machine and version. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * A private-use id for a service name: the same name always gets the same
 * id, so regenerating a project keeps its wire, and two different names
 * rarely share one (4,093 ids). Two daemons that do collide still work
 * apart; only one broker route needs them distinct, and the generated
 * src/service.ts is where to change it.
 */
export function deriveProtocolId(name: string): number {
  const span = PRIVATE_USE_MAX - PRIVATE_USE_MIN + 1;
  let id = PRIVATE_USE_MIN + (fnv1a(name) % span);
  while (AVOIDED_IDS.has(id)) id = id === PRIVATE_USE_MAX ? PRIVATE_USE_MIN : id + 1;
  return id;
}
