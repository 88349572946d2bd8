// Rate and ETA of a long stage, and throttling of progress messages (about 10 a second).
import type { Progress } from '../../shared/types';

/** Measures throughput over a stage and estimates the time left. */
export class RateMeter {
  private readonly start: number;

  constructor(
    private readonly total: number,
    private readonly now: () => number = Date.now,
  ) {
    this.start = now();
  }

  /** Units per second so far and seconds left for `done` of `total`. */
  measure(done: number): { perSec: number; etaSec: number } {
    const elapsed = (this.now() - this.start) / 1000;
    const perSec = elapsed > 0 ? done / elapsed : 0;
    const etaSec = perSec > 0 ? Math.max(0, (this.total - done) / perSec) : Number.NaN;
    return { perSec, etaSec };
  }
}

/** Passes a progress update on at most once per `intervalMs`, and always the last of a stage. */
export class ProgressThrottle {
  private last = Number.NEGATIVE_INFINITY;
  private lastStage: string | undefined;

  constructor(
    private readonly emit: (p: Progress) => void,
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now,
  ) {}

  /** Offers an update; returns true if it was emitted. */
  offer(p: Progress): boolean {
    const t = this.now();
    const stageChanged = p.stage !== this.lastStage;
    const complete = p.done >= p.total;
    if (!stageChanged && !complete && t - this.last < this.intervalMs) return false;
    this.last = t;
    this.lastStage = p.stage;
    this.emit(p);
    return true;
  }
}
