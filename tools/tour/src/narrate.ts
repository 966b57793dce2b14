// Readable progress for the tour: numbered sections, indented steps.
export interface Narrator {
  section(title: string): void;
  step(text: string): void;
  /** Output shown as it is (a command's own lines), indented under the step. */
  detail(text: string): void;
}

export function narrator(out: NodeJS.WritableStream = process.stdout): Narrator {
  return {
    section: (title) => out.write(`\n${title}\n`),
    step: (text) => out.write(`   ✓ ${text}\n`),
    detail: (text) => out.write(`     │ ${text}\n`),
  };
}
