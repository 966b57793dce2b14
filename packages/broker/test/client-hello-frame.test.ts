// connectService's Hello bytes (src/client/hello-frame.ts): encoded once per
// service, wanted version and client version and reused, while a Hello that
// carries trace context is made per call; every field the broker reads is in.
import { CAP_HANDLE_PASSING, Hello, tryDecodeFramed } from '@handoff/protocol';
import { describe, expect, it } from 'vitest';
import { helloFrame } from '../src/client/hello-frame.js';

function decoded(frame: Uint8Array) {
  const got = tryDecodeFramed(frame);
  if (!got) throw new Error('not a whole frame');
  return { frame: got.frame, hello: Hello.decode(got.frame.payload) };
}

describe('helloFrame', () => {
  it('reuses one frame per service, version and client version', () => {
    const a = helloFrame('svc-a', { version: '1.2.3', clientVersion: 'c1' });
    expect(helloFrame('svc-a', { version: '1.2.3', clientVersion: 'c1' })).toBe(a);
    expect(helloFrame('svc-a', { version: '1.2.4', clientVersion: 'c1' })).not.toBe(a);
    expect(helloFrame('svc-a', { version: '1.2.3' })).not.toBe(a);
    expect(helloFrame('svc-b', { version: '1.2.3', clientVersion: 'c1' })).not.toBe(a);
    // Back to the first after others: the same frame, and the right one
    // each time the service alternates.
    const b = helloFrame('svc-b', { version: '1.2.3', clientVersion: 'c1' });
    for (let i = 0; i < 3; i++) {
      expect(helloFrame('svc-a', { version: '1.2.3', clientVersion: 'c1' })).toBe(a);
      expect(helloFrame('svc-b', { version: '1.2.3', clientVersion: 'c1' })).toBe(b);
    }
    expect(decoded(b).hello.serviceName).toBe('svc-b');
    // No client version and an empty one are the same Hello.
    expect(helloFrame('svc-a', { version: '1.2.3', clientVersion: '' })).toBe(
      helloFrame('svc-a', { version: '1.2.3' }),
    );
    const { frame, hello } = decoded(a);
    expect(frame.requestId).toBe(1n);
    expect(hello.serviceName).toBe('svc-a');
    expect(hello.wantedVersion).toBe('1.2.3');
    expect(hello.clientVersion).toBe('c1');
    expect(hello.peerPid).toBe(process.pid);
    expect(hello.clientCapabilities & CAP_HANDLE_PASSING).toBe(CAP_HANDLE_PASSING);
  });

  it('makes a traced Hello per call, with its trace context', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const one = helloFrame('svc-a', { version: '1.2.3', traceparent });
    const two = helloFrame('svc-a', { version: '1.2.3', traceparent });
    expect(two).not.toBe(one);
    expect(decoded(one).frame.traceparent).toBe(traceparent);
    const plain = decoded(helloFrame('svc-a', { version: '1.2.3' })).frame;
    expect(plain.traceparent).toBe('');
    expect(
      decoded(helloFrame('svc-a', { version: '1.2.3', tracestate: 'k=v' })).frame.tracestate,
    ).toBe('k=v');
  });
});
