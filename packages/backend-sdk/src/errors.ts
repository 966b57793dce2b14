// The base of every error the SDK throws or emits. Each subclass has a stable
// `code` (listed in the README) and its own brand, so `instanceof` holds even
// when a daemon ends up with two copies of the SDK in its dependency tree.
import { BrandedError } from '@handoff/protocol';

export class BackendSdkError extends BrandedError {
  static override readonly brand: string = '@handoff/backend-sdk:BackendSdkError';
  override readonly name: string = 'BackendSdkError';
}
