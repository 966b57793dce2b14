// Every place the broker states its own version agrees with package.json:
// the module that reads it, `handoff-broker --version`, and the Hello a
// client sends. (STATUS is checked against a real broker in broker.int.)
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  CONTROL_PAYLOAD_PROTOCOL,
  ErrorCode,
  encodeFramed,
  Hello,
  HelloReply,
  Refused,
  responseFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/run.js';
import { ConnectServiceError, connectService } from '../src/client/connect-service.js';
import { brokerPackageVersion } from '../src/package-version.js';
import { tempDir } from './harness.js';

const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../package.json'), 'utf8')) as {
  name: string;
  version: string;
};

const tmp = tempDir('package-version');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => tmp.remove());

describe('the broker version', () => {
  it("is package.json's", () => {
    expect(manifest.name).toBe('@handoff/broker');
    expect(brokerPackageVersion()).toBe(manifest.version);
  });

  it('handoff-broker --version prints it and exits 0', async () => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['--version'], {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      env: {},
    });
    expect({ code, stdout, stderr }).toEqual({
      code: 0,
      stdout: `${manifest.version}\n`,
      stderr: '',
    });
  });

  it("connectService's Hello names the client library and its version", async () => {
    const path = tmp.path('broker.sock');
    const hellos: Hello[] = [];
    const peers = new Set<Socket>();
    const server = createServer((socket) => {
      peers.add(socket);
      socket.on('error', () => {});
      let buffered = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        const decoded = tryDecodeFramed(buffered);
        if (!decoded) return;
        hellos.push(Hello.decode(decoded.frame.payload));
        // A refusal ends the client's attempt at once, without a retry.
        socket.end(
          encodeFramed(
            responseFrame(
              { ...decoded.frame, payloadProtocol: CONTROL_PAYLOAD_PROTOCOL },
              {
                payload: HelloReply.encode({
                  result: {
                    case: 'refused',
                    value: Refused.create({ code: ErrorCode.SERVICE_UNKNOWN, reason: 'test' }),
                  },
                }),
              },
            ),
          ),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    cleanups.push(async () => {
      for (const peer of peers) peer.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    const refused = await connectService('anything', {
      version: '1.0.0',
      brokerPath: path,
      timeoutMs: 10_000,
    }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConnectServiceError);
    expect((refused as ConnectServiceError).code).toBe('REFUSED');
    expect(hellos).toHaveLength(1);
    expect(hellos[0]).toMatchObject({
      clientLibName: '@handoff/broker',
      clientLibVersion: manifest.version,
    });
  });
});
