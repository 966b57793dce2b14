// One daemon as the broker knows it: the record the registry keeps
// (backend-registry.ts) and routing reads. Its life is the registry's; this
// file only names its fields.
import type { SpawnedProcess } from '@handoff/fdpass';
import type { DaemonProcess } from '@handoff/protocol';
import type { ServiceDefinition } from './config/definition.js';
import type { DaemonOutput } from './daemon-spawn.js';
import type { BackendChannel } from './handoff/control-channel.js';

export interface Backend {
  readonly key: string;
  readonly definition: ServiceDefinition;
  readonly endpoint: string;
  /** The process we spawned; null for one rediscovered after a restart. */
  child: SpawnedProcess | null;
  pid: number | null;
  channel: BackendChannel | null;
  identity: DaemonProcess | null;
  state: 'starting' | 'ready' | 'stopping';
  startedAt: number;
  lastRoutedAt: number;
  routed: number;
  /** Its control channel closed and no new one came yet. */
  channelLost: boolean;
  /** What it writes to stdout and stderr, for one we spawned (see daemon-spawn.ts). */
  output: DaemonOutput | null;
}
