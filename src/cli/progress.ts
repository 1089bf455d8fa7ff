/**
 * Progress bars for long command-line runs (rebuild, bench seeding), drawn by cli-progress on
 * stderr, and only when stderr is a terminal: piped, redirected or in CI the run stays quiet and
 * stdout keeps only the result lines.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Sets the stage shown before the bar, and its total when it changes. */
  update(done: number, total: number, stage?: string): void;
  stop(): void;
}

const QUIET: Progress = { update() {}, stop() {} };

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return QUIET;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} {stage} |{bar}| {value}/{total} · {percentage}% · {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let shownTotal = -1;
  return {
    update(done, total, stage = '') {
      if (!started) {
        bar.start(total, done, { stage });
        started = true;
        shownTotal = total;
        return;
      }
      if (total !== shownTotal) {
        bar.setTotal(total);
        shownTotal = total;
      }
      bar.update(done, { stage });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
