// The addon constants read on every poll event and every received batch,
// copied once per realm into a small object with fast properties. The full
// constants table stays on the binding (native-loader.ts).
import type { NativeBinding } from './native-loader.js';

export interface HotConstants {
  readonly UV_READABLE: number;
  readonly UV_WRITABLE: number;
  readonly BATCH_EOF: number;
  readonly BATCH_BUDGET: number;
  readonly BATCH_SHORT: number;
  readonly RECV_OK: number;
}

let hot: HotConstants | undefined;

export function hotConstants(native: NativeBinding): HotConstants {
  if (hot === undefined) {
    const c = native.constants;
    hot = {
      UV_READABLE: c.UV_READABLE,
      UV_WRITABLE: c.UV_WRITABLE,
      BATCH_EOF: c.BATCH_EOF,
      BATCH_BUDGET: c.BATCH_BUDGET,
      BATCH_SHORT: c.BATCH_SHORT,
      RECV_OK: c.RECV_OK,
    };
  }
  return hot;
}
