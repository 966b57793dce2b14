// Every error class of the SDK extends BackendSdkError, and `instanceof`
// holds across two loaded copies of the package (two versions in one
// dependency tree, or a bundled copy beside an installed one).
import { describe, expect, it, vi } from 'vitest';

type Sdk = typeof import('../src/index.js');
type ProbeAnswer = typeof import('../src/probe-answer.js');

/** One instance of every error class, built from the given copy of the package. */
function everyError(sdk: Sdk, probeAnswer: ProbeAnswer): Record<string, Error> {
  return {
    BackendSdkError: new sdk.BackendSdkError('SOME_CODE', 'base'),
    DaemonPathError: new sdk.DaemonPathError('NO_UID', 'no uid'),
    FdStoreClientError: new sdk.FdStoreClientError('BAD_FD_NAME', 'bad name'),
    FrameClientError: new sdk.FrameClientError('CLOSED', 'closed'),
    HandoffAcceptorError: new sdk.HandoffAcceptorError('BAD_FRAME', 'bad frame'),
    IdentitySidecarError: new sdk.IdentitySidecarError('/x.json', 'bad'),
    MalformedProbeError: new probeAnswer.MalformedProbeError('bad probe'),
    MuxError: new sdk.MuxError('FRAMING', 'bad'),
    PrivateSocketError: new sdk.PrivateSocketError('NOT_A_SOCKET', '/x', 'not a socket'),
    ProbeError: new sdk.ProbeError('TIMEOUT', 'late'),
    ProcInfoError: new sdk.ProcInfoError('MALFORMED', 'bad stat'),
    RequestAbortedError: new sdk.RequestAbortedError('CANCELLED', 'cancelled'),
    ServerConnectionError: new sdk.ServerConnectionError('PEER_REJECTED', 1, 'refused'),
  };
}

function classesOf(
  sdk: Sdk,
  probeAnswer: ProbeAnswer,
): Record<string, abstract new (...args: never[]) => Error> {
  return {
    BackendSdkError: sdk.BackendSdkError,
    DaemonPathError: sdk.DaemonPathError,
    FdStoreClientError: sdk.FdStoreClientError,
    FrameClientError: sdk.FrameClientError,
    HandoffAcceptorError: sdk.HandoffAcceptorError,
    IdentitySidecarError: sdk.IdentitySidecarError,
    MalformedProbeError: probeAnswer.MalformedProbeError,
    MuxError: sdk.MuxError,
    PrivateSocketError: sdk.PrivateSocketError,
    ProbeError: sdk.ProbeError,
    ProcInfoError: sdk.ProcInfoError,
    RequestAbortedError: sdk.RequestAbortedError,
    ServerConnectionError: sdk.ServerConnectionError,
  };
}

describe('BackendSdkError and its brands', () => {
  it('every error has its code, its name, and BackendSdkError as its base', async () => {
    const sdk = await import('../src/index.js');
    const errors = everyError(sdk, await import('../src/probe-answer.js'));
    for (const [name, error] of Object.entries(errors)) {
      expect(error).toBeInstanceOf(sdk.BackendSdkError);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe(name);
      expect(typeof (error as Error & { code: unknown }).code).toBe('string');
    }
    expect(errors.ServerConnectionError).toMatchObject({ code: 'PEER_REJECTED', connectionId: 1 });
    expect(errors.IdentitySidecarError).toMatchObject({ code: 'MALFORMED_SIDECAR' });
    expect(errors.MalformedProbeError).toMatchObject({ code: 'MALFORMED_PROBE' });
  });

  it('instanceof holds across two loaded copies, for the right class and the base only', async () => {
    const first = await import('../src/index.js');
    const firstProbe = await import('../src/probe-answer.js');
    vi.resetModules();
    const second = await import('../src/index.js');
    const secondProbe = await import('../src/probe-answer.js');
    // Really two copies: the classes are distinct objects.
    expect(second.ProbeError).not.toBe(first.ProbeError);
    expect(second.BackendSdkError).not.toBe(first.BackendSdkError);

    const classes = classesOf(first, firstProbe);
    for (const [name, error] of Object.entries(everyError(second, secondProbe))) {
      expect(error instanceof classes[name]!, `${name} instanceof first copy's ${name}`).toBe(true);
      expect(error instanceof first.BackendSdkError, `${name} instanceof BackendSdkError`).toBe(
        true,
      );
      for (const [other, cls] of Object.entries(classes)) {
        if (other === name || other === 'BackendSdkError') continue;
        expect(error instanceof cls, `${name} instanceof ${other}`).toBe(false);
      }
    }
  });
});
