// Test harness for the admin protocol: a real tiny Unix-socket admin server
// that answers with handleAdminRequest, and a fake broker (a plain
// AdminProvider) whose facts a test can change. Temp dirs are the kit's.
import { createServer, type Server, type Socket } from 'node:net';
import {
  AdminReply,
  AdminRequest,
  ErrorCode,
  encodeFramed,
  FrameDecoder,
  FrameKind,
  responseFrame,
} from '@handoff/protocol';
import { handleAdminRequest } from '../src/admin.js';
import type { AdminProvider } from '../src/admin-provider.js';
import { HandoffTokenPool } from '../src/handoff/token-pool.js';
import type { RouterContext } from '../src/router-context.js';

export { tempDir } from '@handoff/testkit';

export interface FakeBroker extends AdminProvider {
  healthy: boolean;
  shutdowns: number[];
  instanceList: ReturnType<AdminProvider['instances']>;
}

export function fakeBroker(socketPath = '/run/user/1000/handoff/broker.sock'): FakeBroker {
  const broker: FakeBroker = {
    healthy: true,
    shutdowns: [],
    instanceList: [
      {
        service: 'demo-kv',
        version: '1.2.0',
        endpoint: '/run/user/1000/handoff/services/demo-kv@1.2.0.sock',
        pid: 4242,
        state: 'ready',
        startedAtUnixMs: Date.UTC(2025, 0, 2, 3, 4, 5),
        connectionsRouted: 17,
      },
      {
        service: 'search',
        version: '0.9.1-beta.1',
        endpoint: '/run/user/1000/handoff/services/search@0.9.1-beta.1.sock',
        pid: null,
        state: 'starting',
        startedAtUnixMs: Date.UTC(2025, 0, 2, 3, 5, 0),
        connectionsRouted: 0,
      },
    ],
    status: () => ({
      pid: 1234,
      version: '0.1.0',
      socketPath,
      uptimeSeconds: 3725.4,
      services: 2,
      activeBackends: 1,
      connectionsOpen: 3,
      draining: false,
      memory: {
        rss: 96 * 2 ** 20,
        heapUsed: 10.5 * 2 ** 20,
        heapTotal: 16 * 2 ** 20,
        external: 3 * 2 ** 20,
      },
    }),
    instances: () => broker.instanceList,
    health: () => ({
      healthy: broker.healthy,
      checks: [
        { name: 'listening', ok: true, detail: 'accepting on the broker socket' },
        {
          name: 'fd headroom',
          ok: broker.healthy,
          detail: broker.healthy ? '3% of the fd limit' : '97% of the fd limit',
        },
      ],
    }),
    ready: () => ({ ready: broker.healthy, reason: broker.healthy ? '' : 'draining' }),
    backendHealth: async (serviceName) => ({
      healthy: true,
      backends: broker.instanceList
        .filter((i) => serviceName === undefined || i.service === serviceName)
        .map((i) => ({
          service: i.service,
          version: i.version,
          endpoint: i.endpoint,
          pid: i.pid,
          healthy: true,
          detail: '',
          roundTripMs: 0.25,
        })),
    }),
    config: () => ({ socket_path: socketPath, services: { 'demo-kv': { versions: ['1.2.0'] } } }),
    metricsText: () => '# TYPE connections_open gauge\nconnections_open 3\n# EOF\n',
    shutdown: async (deadlineMs) => {
      broker.shutdowns.push(deadlineMs);
    },
  };
  return broker;
}

/** A real admin endpoint: frames in, handleAdminRequest, frames out. */
export async function startAdminServer(
  path: string,
  provider: AdminProvider,
): Promise<{ server: Server; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const decoder = new FrameDecoder();
    socket.on('data', async (chunk) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.kind !== FrameKind.REQUEST) continue;
        const reply = await handleAdminRequest(AdminRequest.decode(frame.payload), provider);
        socket.write(encodeFramed(responseFrame(frame, { payload: AdminReply.encode(reply) })));
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A router context for hello-router's serveClient that routes nothing and
 * answers no admin request; `overrides` replace any part of it.
 */
export function routerContext(overrides: Partial<RouterContext> = {}): RouterContext {
  return {
    select: () => ({
      ok: false,
      code: ErrorCode.SERVICE_UNKNOWN,
      reason: 'no routing in this test',
    }),
    acquire: async () => {
      throw new Error('no backend in this test');
    },
    admin: async () => {
      throw new Error('no admin in this test');
    },
    nextConnectionId: () => 1n,
    tokens: new HandoffTokenPool(),
    helloDeadlineMs: 1000,
    handoffDeadlineMs: 500,
    fdPressureRetryMs: 250,
    admitHello: () => null,
    daemonMinProtocol: 1,
    daemonMaxProtocol: 1,
    observeHello: () => {},
    observeHandoff: () => {},
    log: () => {},
    ...overrides,
  };
}

/** routerContext() answering admin frames with handleAdminRequest over a fakeBroker(). */
export function adminRouterContext(): RouterContext {
  const provider = fakeBroker();
  return routerContext({ admin: (request) => handleAdminRequest(request, provider) });
}
