// What a key pressed in the live `top` view does: q, Q and Ctrl-C quit
// (raw mode delivers Ctrl-C as a byte, not SIGINT), s / S step the sort
// column forward / back, digits 1… pick one. Pure: bytes in, actions out.
import { SORT_KEYS, type SortKey } from './model.js';

export type KeyAction = { kind: 'quit' } | { kind: 'sort'; key: SortKey };

/** The actions of one chunk of terminal input, in order; other bytes (arrows, letters) do nothing. */
export function keyActions(input: Uint8Array | string, current: SortKey): KeyAction[] {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const actions: KeyAction[] = [];
  let sort = current;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\x1b') {
      // An escape sequence (arrow keys, …): skip it whole, so its letters are not keys.
      if (text[i + 1] === '[' || text[i + 1] === 'O') {
        i += 2;
        while (i < text.length && !/[@-~]/.test(text[i] as string)) i++;
      }
      continue;
    }
    if (c === 'q' || c === 'Q' || c === '\x03' || c === '\x04') {
      actions.push({ kind: 'quit' });
      break;
    }
    let next: SortKey | undefined;
    if (c === 's') next = stepSort(sort, 1);
    else if (c === 'S') next = stepSort(sort, -1);
    else if (c >= '1' && c <= '9') next = SORT_KEYS[Number(c) - 1];
    if (next !== undefined) {
      sort = next;
      actions.push({ kind: 'sort', key: sort });
    }
  }
  return actions;
}

export function stepSort(current: SortKey, step: 1 | -1): SortKey {
  const i = SORT_KEYS.indexOf(current);
  return SORT_KEYS[(i + step + SORT_KEYS.length) % SORT_KEYS.length] as SortKey;
}
