// The broker's per-client log lines: at debug, each routed Hello logs its
// route with the fields that tie it to the client (service, connection id,
// a valid traceparent); at the default level there are none. The router
// makes those fields only for a line that is written.
import { describe, expect, it } from 'vitest';
import { connectService } from '../src/client/connect-service.js';
import { liveBrokers } from './broker-session.js';
import { capturedLog, echoService } from './harness.js';

const { broker } = liveBrokers();

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('routed log lines', () => {
  it('names the service, the connection id and the trace at debug, on both routes', async () => {
    const log = capturedLog('debug');
    const b = await broker([echoService('echo'), echoService('plain', { handoff: false })], {
      logger: log.logger,
    });
    const routes = [];
    for (const [name, traceparent] of [
      ['echo', TRACEPARENT],
      ['plain', TRACEPARENT],
      ['plain', undefined],
    ] as const) {
      const connection = await connectService(name, {
        version: '1.0.0',
        brokerPath: b.socketPath,
        timeoutMs: 30_000,
        ...(traceparent ? { traceparent } : {}),
      });
      routes.push(connection.route);
      connection.socket.destroy();
    }
    expect(routes).toEqual(['handoff', 'reconnect', 'reconnect']);
    const routed = log.lines.filter((line) => String(line.msg).startsWith('routed: '));
    expect(routed.map((line) => [line.msg, line.service, line.traceparent])).toEqual([
      ['routed: handoff', 'echo', TRACEPARENT],
      ['routed: reconnect', 'plain', TRACEPARENT],
      ['routed: reconnect', 'plain', undefined],
    ]);
    const ids = routed.map((line) => line.connection_id);
    for (const id of ids) expect(id).toMatch(/^[1-9][0-9]*$/);
    expect(new Set(ids).size).toBe(3);
  });

  it('writes none of them at info', async () => {
    const log = capturedLog('info');
    const b = await broker([echoService('plain', { handoff: false })], { logger: log.logger });
    for (let i = 0; i < 3; i++)
      (
        await connectService('plain', {
          version: '1.0.0',
          brokerPath: b.socketPath,
          timeoutMs: 30_000,
        })
      ).socket.destroy();
    expect(log.lines.filter((line) => String(line.msg).startsWith('routed: '))).toEqual([]);
    expect(log.lines.some((line) => line.msg === 'broker listening')).toBe(true);
  });
});
