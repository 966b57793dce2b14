// The two endpoints a service version's daemons alternate between in
// rolling restarts: distinct, in the services directory, and of one length,
// so a path that fits the 108-byte socket limit on one fits on the other.
import { describe, expect, it } from 'vitest';
import { parseServiceDefinition } from '../../src/config/definition.js';
import { endpointSlots } from '../../src/lifecycle/daemon-start.js';

describe('endpointSlots', () => {
  it.each(['a', 'demo-kv', 'x'.repeat(64)])('are distinct and equally long for %s', (name) => {
    const definition = parseServiceDefinition(
      { name, version: '1.2.3-rc.1', command: 'node' },
      'test',
    );
    const [first, second] = endpointSlots('/run/user/1000/handoff/services', definition);
    expect(first).toBe(`/run/user/1000/handoff/services/${name}-1.2.3-rc.1.sock`);
    expect(second).not.toBe(first);
    expect(second.length).toBe(first.length);
    expect(second.startsWith('/run/user/1000/handoff/services/')).toBe(true);
  });
});
