// The instructions suite's reading of a callgrind dump (src/broker/callgrind.ts):
// each function's own cost is its cost lines minus the inclusive cost of the
// calls it makes, names given once by id are found again by id, and the split
// into V8's GC, V8's compiler and the rest adds up to the dump's total.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCounts } from '../src/broker/callgrind.ts';

const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-callgrind-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dump(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('readCounts', () => {
  it('sums own costs by symbol, leaving out the calls’ inclusive costs', async () => {
    const file = dump(
      'a.out',
      [
        'version: 1',
        'creator: callgrind-3.19.0',
        'positions: line',
        'events: Ir',
        'summary: 1050',
        '',
        'ob=(1) /usr/bin/node',
        'fl=(1) ???',
        'fn=(1) main',
        '0 100',
        'cfn=(2) v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)',
        'calls=3 0',
        '0 450',
        'cfn=(3) v8::internal::compiler::GraphReducer::ReduceTop()',
        'calls=1 0',
        '0 200',
        '+2 50',
        '',
        'fn=(2)',
        '0 300',
        'cfn=(4) v8::internal::Scavenger::ScavengeObject(v8::internal::FullHeapObjectSlot)',
        'calls=10 0',
        '0 150',
        '',
        'fn=(4)',
        '* 150',
        '',
        'fn=(3)',
        '0 200',
        '',
        'fn=(5) 0x000000000d0f4d40',
        '0 250',
        '',
        'totals: 1050',
      ].join('\n'),
    );
    expect(await readCounts(file)).toEqual({
      total: 1050,
      gc: 450,
      compiler: 200,
      mutator: 400,
    });
  });

  it('reads a dump with nothing but its total as all mutator', async () => {
    const file = dump('b.out', 'events: Ir\nfn=(1) uv_run\n0 42\ntotals: 42\n');
    expect(await readCounts(file)).toEqual({ total: 42, gc: 0, compiler: 0, mutator: 42 });
  });
});
