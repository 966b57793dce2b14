// Readable progress for the tour: numbered sections, indented steps.
export interface Narrator {
  section(title: string): void;
  step(text: string): void;
}

export function narrator(out: NodeJS.WritableStream = process.stdout): Narrator {
  return {
    section: (title) => out.write(`\n${title}\n`),
    step: (text) => out.write(`   ✓ ${text}\n`),
  };
}
