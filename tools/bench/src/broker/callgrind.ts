// Counting the instructions a process executes, with valgrind's callgrind:
// the command prefix to start it under, dumping its counters while it runs
// (callgrind_control), and reading a dump — the total, and how much of it
// went to V8's garbage collector and optimizing compiler.
// Instruction counts do not move with the neighbours on a shared machine the
// way CPU time does, so a few percent is a difference they can show.
import { execFile } from 'node:child_process';
import { closeSync, createReadStream, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Throws with what to install when valgrind is missing. */
export async function requireCallgrind(): Promise<void> {
  try {
    await run('valgrind', ['--version']);
    await run('callgrind_control', ['--version']);
  } catch {
    throw new Error(
      'the instructions suite counts with valgrind: apt-get install valgrind (callgrind_control comes with it)',
    );
  }
}

/**
 * The command a process is started under to be counted: its dumps go to
 * `outFile`.1, .2, …, and what it has counted at exit to `outFile`.
 */
export function callgrindPrefix(outFile: string): string[] {
  return ['valgrind', '-q', '--tool=callgrind', `--callgrind-out-file=${outFile}`];
}

/**
 * Node's flags for a process counted: V8's compiler and GC then work on the
 * main thread, counted in the same total whatever the scheduling.
 */
export const COUNTED_NODE_ARGS = ['--single-threaded'] as const;

/**
 * Dumps the counters of `pid` to `outFile`.N (the Nth dump) and returns
 * that file once written. A dump also starts the counters afresh, so a
 * dump marks where a measured span begins and the next one holds exactly
 * that span.
 */
export async function dumpCounters(pid: number, outFile: string, n: number): Promise<string> {
  await run('callgrind_control', ['--dump', String(pid)]);
  const file = `${outFile}.${n}`;
  const deadline = performance.now() + 60_000;
  // callgrind writes the dump from the process itself, after the request.
  while (!existsSync(file) || !complete(file)) {
    if (performance.now() > deadline) throw new Error(`no callgrind dump at ${file}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return file;
}

/** Whether a dump has been written to its end (its last lines hold the totals). */
function complete(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(size, 4096));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    return /^totals:/m.test(tail.toString('latin1'));
  } finally {
    closeSync(fd);
  }
}

export interface InstructionCounts {
  total: number;
  /** V8's garbage collector (scavenges, marking, sweeping, compaction). */
  gc: number;
  /** V8's optimizing compilers (TurboFan, Maglev), still tiering up. */
  compiler: number;
  /** Everything else: the program's own work, V8's builtins and runtime, libuv, libc. */
  mutator: number;
}

const FIELDS = ['total', 'gc', 'compiler', 'mutator'] as const;

/** Counts built field by field from the same field of each of `counts` (sums, differences, shares). */
export function fieldwise(
  f: (...values: number[]) => number,
  ...counts: readonly InstructionCounts[]
): InstructionCounts {
  const out = { total: 0, gc: 0, compiler: 0, mutator: 0 };
  for (const field of FIELDS) out[field] = f(...counts.map((c) => c[field]));
  return out;
}

// By symbol. Heuristic but stable: V8's heap and compiler code live in
// namespaces and classes with these names.
const GC_SYMBOL =
  /v8::internal::(Heap|Scaveng|MarkCompact|Marking|MainMarking|Sweeper|Evacuat|RememberedSet|Minor|ConcurrentMarking|IncrementalMarking|.*Visitor|LiveObjectRange|PagedSpace|NewSpace|SemiSpace)|heap::base::/;
const COMPILER_SYMBOL =
  /v8::internal::(compiler::|maglev::|Compiler::|OptimizingCompile|TurbofanCompilationJob|Zone|CodeGenerator|Deoptimizer|RelocIterator)/;

/**
 * The dump's counts, split by symbol. Each function's own cost is summed
 * from the dump itself (callgrind's format: the cost lines of an `fn=`
 * block, except the line after each `calls=`, which is the callee's
 * inclusive cost), so nothing is counted twice.
 */
export async function readCounts(file: string): Promise<InstructionCounts> {
  const names = new Map<string, string>();
  let fn = '';
  let afterCall = false;
  let total = 0;
  let gc = 0;
  let compiler = 0;
  const lines = createInterface({ input: createReadStream(file) });
  for await (const text of lines) {
    if (text.startsWith('fn=')) {
      fn = nameOf(text.slice(3), names);
      continue;
    }
    if (text.startsWith('cfn=')) {
      nameOf(text.slice(4), names);
      continue;
    }
    if (text.startsWith('calls=')) {
      afterCall = true;
      continue;
    }
    if (text.startsWith('totals:') || text.startsWith('summary:')) {
      total = Number(
        text
          .slice(text.indexOf(':') + 1)
          .trim()
          .split(/\s+/)[0],
      );
      continue;
    }
    const cost = /^[+\-*\d]\S*\s+(\d+)/.exec(text);
    if (!cost) continue;
    if (afterCall) {
      afterCall = false;
      continue;
    }
    const ir = Number(cost[1]);
    // The compiler first: some of its classes are visitors too.
    if (COMPILER_SYMBOL.test(fn)) compiler += ir;
    else if (GC_SYMBOL.test(fn)) gc += ir;
  }
  return { total, gc, compiler, mutator: total - gc - compiler };
}

/** `(id) name` defines id, `(id)` refers to it, a bare name is itself. */
function nameOf(spec: string, names: Map<string, string>): string {
  const m = /^\((\d+)\)\s*(.*)$/.exec(spec);
  if (!m) return spec;
  if (m[2]) names.set(m[1]!, m[2]);
  return names.get(m[1]!) ?? spec;
}
