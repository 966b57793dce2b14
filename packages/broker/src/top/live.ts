// The live `top` view on a terminal: the alternate screen, raw-mode keys,
// a sample every interval, redraws on a key or a resize — and the terminal
// given back as it was on every way out (q, Ctrl-C, a signal, a throw).
// Sampling is sample.ts's, the numbers model.ts's, the picture render.ts's.
import type { AdminClientError } from '../client/admin-client.js';
import { keyActions } from './keys.js';
import { buildView, type SortKey } from './model.js';
import { renderText } from './render.js';
import { type TopSample, takeSample } from './sample.js';

export interface LiveOptions {
  socketPath: string;
  intervalMs: number;
  timeoutMs: number;
  sort: SortKey;
  /** The one line for a broker that cannot be asked. */
  describe(error: unknown): string;
}

/** The terminal: stdout a TTY, stdin one too when keys are to work. */
export interface LiveTerminal {
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
  /** Process signals that end the view (SIGTERM, SIGHUP; SIGINT when stdin is not raw). */
  signals: NodeJS.Process;
}

const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';
const QUIT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Runs the live view until q, Ctrl-C or a signal; resolves 0 (the user quit). */
export function runLive(options: LiveOptions, terminal: LiveTerminal): Promise<number> {
  const { input, output, signals } = terminal;
  const raw = input.isTTY === true && typeof input.setRawMode === 'function';
  let sort = options.sort;
  let previous: TopSample | null = null;
  let current: TopSample | null = null;
  let problem: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const abort = new AbortController();

  const draw = () => {
    let text: string;
    if (current === null) {
      text = `handoff-broker top  (sort: ${sort})\n\n${problem ? `! ${problem}` : 'asking the broker…'}\n`;
    } else {
      const width = output.columns;
      text = renderText(buildView(current, previous, sort), {
        keysHint: true,
        ...(width ? { width } : {}),
        ...(problem ? { problem } : {}),
      });
    }
    const height = output.rows || 1000;
    const lines = text.split('\n').slice(0, height);
    output.write(`${HOME}${lines.join(`${CLEAR_LINE_END}\n`)}${CLEAR_LINE_END}${CLEAR_BELOW}`);
  };

  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      abort.abort();
      input.off('data', onData);
      output.off('resize', draw);
      for (const s of QUIT_SIGNALS) signals.off(s, onSignal);
      if (raw) input.setRawMode(false);
      input.pause();
      output.write(LEAVE);
      resolve(code);
    };
    const onSignal = () => finish(0);
    const onData = (chunk: Buffer | string) => {
      for (const action of keyActions(chunk, sort)) {
        if (action.kind === 'quit') return finish(0);
        sort = action.key;
      }
      if (!done) draw();
    };
    const tick = async () => {
      const started = performance.now();
      try {
        const sample = await takeSample(options.socketPath, {
          timeoutMs: options.timeoutMs,
          signal: abort.signal,
        });
        if (done) return;
        previous = current;
        current = sample;
        problem = undefined;
      } catch (error) {
        if (done) return;
        problem = options.describe(error as AdminClientError);
      }
      draw();
      timer = setTimeout(tick, Math.max(0, options.intervalMs - (performance.now() - started)));
    };

    try {
      output.write(ENTER);
      if (raw) input.setRawMode(true);
      input.on('data', onData);
      input.resume();
      output.on('resize', draw);
      for (const s of QUIT_SIGNALS) signals.on(s, onSignal);
      draw();
      void tick().catch(() => finish(1));
    } catch (error) {
      finish(1);
      throw error;
    }
  });
}
