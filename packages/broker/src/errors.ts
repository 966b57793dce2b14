// The base of every error the broker, its client entry and its CLI throw.
// Each subclass has a stable `code` (listed in the README) and its own brand,
// so `instanceof` holds even when two copies of the package are loaded.
import { BrandedError } from '@handoff/protocol';

export class BrokerError extends BrandedError {
  static override readonly brand: string = '@handoff/broker:BrokerError';
  override readonly name: string = 'BrokerError';
}
