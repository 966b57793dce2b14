// The consumer's one assertion helper: a scenario that sees a wrong value
// exits non-zero with a message saying what it saw.
export function check(ok: boolean, what: string): asserts ok {
  if (!ok) {
    console.error(`consumer check failed: ${what}`);
    process.exit(1);
  }
}
