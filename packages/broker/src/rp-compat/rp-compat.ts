// The running-process drop-in as the broker server sees it (BrokerOptions
// .rpCompat): the extra listener at RP's shared-broker address and the
// `.servicedef` definitions merged into every configuration load. The
// server calls prepare/listen/close and merge; the parts live beside this file.
import type { FdSocket } from '@handoff/fdpass';
import type { ServiceConfigLoad } from '../config/load.js';
import type { ClientMode } from '../hello-router.js';
import { rpSharedBrokerPath } from './address.js';
import { RpCompatListener } from './listener.js';
import { loadServicedefs, mergeServicedefs, rpServicedefDir } from './servicedef-load.js';
import { type ServicedefWatch, watchServicedefs } from './servicedef-watch.js';

/** BrokerOptions.rpCompat: where running-process clients and definitions are. */
export interface RpCompatOptions {
  /** Where the RP address and directory are read from (XDG_RUNTIME_DIR, …); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The RP client socket; default: the shared v1 broker address (rpSharedBrokerPath). */
  socketPath?: string;
  /** The `.servicedef` directory (default rpServicedefDir(env)); false: load none. */
  servicedefDir?: string | false;
}

export interface RpCompatParts {
  serve(socket: FdSocket, mode: ClientMode): void;
  log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void;
  /** The broker's configuration reload, called when a `.servicedef` changes; absent: not watched. */
  reload?: (() => void) | undefined;
}

export class RpCompat {
  private readonly options: RpCompatOptions;
  private readonly parts: RpCompatParts;
  private listener: RpCompatListener | null = null;
  private readonly servicedefDir: string | null;
  private watch: ServicedefWatch | null = null;

  constructor(options: RpCompatOptions | true, parts: RpCompatParts) {
    this.options = options === true ? {} : options;
    this.parts = parts;
    const dir = this.options.servicedefDir;
    this.servicedefDir = dir === false ? null : (dir ?? rpServicedefDir(this.options.env));
  }

  /** The RP socket path, once prepare() computed it. */
  get socketPath(): string | null {
    return this.listener?.path ?? null;
  }

  /** Computes the address and checks it is free (see RpCompatListener.prepare): throws before anything is bound. */
  async prepare(successor: boolean): Promise<void> {
    const env = this.options.env ?? process.env;
    const path = this.options.socketPath ?? (await rpSharedBrokerPath({ env }));
    this.listener = new RpCompatListener(path, this.parts);
    await this.listener.prepare(successor);
  }

  /** Binds (see RpCompatListener.listen), then watches the `.servicedef` directory. */
  async listen(successor: boolean): Promise<void> {
    await this.listener?.listen(successor);
    const { reload } = this.parts;
    if (reload !== undefined && this.servicedefDir !== null)
      this.watch = watchServicedefs(this.servicedefDir, reload);
  }

  /** A configuration load with the `.servicedef` files read now. */
  merge(json: ServiceConfigLoad): ServiceConfigLoad {
    if (this.servicedefDir === null) return json;
    return mergeServicedefs(json, loadServicedefs(this.servicedefDir));
  }

  close(): Promise<void> {
    this.watch?.close();
    return this.listener?.close() ?? Promise.resolve();
  }

  handedOver(): Promise<void> {
    this.watch?.close();
    return this.listener?.handedOver() ?? Promise.resolve();
  }
}
