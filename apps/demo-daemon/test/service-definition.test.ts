import { existsSync } from 'node:fs';
import { parseServiceDefinition } from '@handoff/broker';
import { describe, expect, it } from 'vitest';
import { demoKvServiceDefinition } from '../src/service-definition.js';

describe('demoKvServiceDefinition', () => {
  it('is a definition the broker accepts as it is', () => {
    const parsed = parseServiceDefinition(demoKvServiceDefinition(), 'test');
    expect(parsed).toMatchObject({ name: 'demo-kv', version: '1.0.0', handoff: true });
  });

  it('runs the TypeScript entry through tsx when loaded from source', () => {
    const definition = demoKvServiceDefinition({
      idleTimeoutSecs: 7,
      drainMs: 300,
      logLevel: 'warn',
    });
    expect(definition.command).toBe(process.execPath);
    const entry = definition.args.find((a) => a.endsWith('daemon-main.ts'))!;
    expect(existsSync(entry)).toBe(true);
    expect(definition.args).toEqual([
      '--conditions=@handoff/source',
      '--import',
      'tsx',
      entry,
      '--idle-timeout-secs',
      '7',
      '--drain-ms',
      '300',
    ]);
    expect(existsSync(`${definition.cwd}/package.json`)).toBe(true);
    expect(definition.env).toEqual({ HANDOFF_LOG_LEVEL: 'warn' });
    // The broker escalates to SIGKILL only after the daemon's own drain.
    expect(definition.stopGraceMs).toBeGreaterThan(300);
  });
});
