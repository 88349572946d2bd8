// Runs async work over a list with a fixed number in flight, checking for cancellation before each
// item: an abort is noticed within one item's time, not after the whole list.
import { throwIfCancelled } from '../util/errors';

/** Calls `fn` on every item with at most `limit` calls in flight; rejects with `RunCancelled` soon after `signal` aborts. */
export async function forEachConcurrent<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      throwIfCancelled(signal);
      const index = next++;
      await fn(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
