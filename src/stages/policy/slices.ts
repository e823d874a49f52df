// Long jobs on the main thread (parsing a million-line file, filling a million-entry map)
// are written as generators that yield every few thousand items. Run synchronously at
// startup; run in time slices during a reload, so queries keep being answered between
// slices (a few ms each) while the new rule set is built beside the old one.

/** Runs every step now. */
export function runAll(steps: Iterator<unknown>): void {
  while (!steps.next().done);
}

/** Runs the steps, giving the event loop a turn whenever `sliceMs` have passed. */
export async function runSliced(steps: Iterator<unknown>, sliceMs = SLICE_MS): Promise<void> {
  let due = performance.now() + sliceMs;
  while (!steps.next().done) {
    if (performance.now() >= due) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      due = performance.now() + sliceMs;
    }
  }
}

/**
 * Longest run between turns of the event loop. libuv reads at most 32 datagrams per turn,
 * so a 1 ms slice still lets the server answer ~30,000 queries a second during a reload.
 */
export const SLICE_MS = 1;

/** How often (in items) a generator offers to yield: rare enough to cost nothing. */
export const YIELD_EVERY = 256;
