// metrics.jsonl as epochs, for every reader of a run folder (the panel, `compare`).
import { isObject } from './protocol/guards';
import type { EpochMetrics } from './types';

/** The epochs of metrics.jsonl, one per epoch number, in order; a line being written (torn) is left out. */
export function parseMetricsLines(text: string): EpochMetrics[] {
  const epochs = new Map<number, EpochMetrics>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (isObject(value) && typeof value.epoch === 'number' && typeof value.loss === 'number')
        epochs.set(value.epoch, value as unknown as EpochMetrics);
    } catch {
      // A line being written while we read: it will be complete next time.
    }
  }
  return [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
}
