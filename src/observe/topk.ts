// A bounded "most frequent" counter. When it is full, the less frequent half is dropped in
// one go (so a new key costs O(1) amortised, not a scan), and the survivors keep their
// counts: the heavy hitters, which are what "top" shows, stay. Memory never grows with the
// number of distinct clients or names.
export class TopK {
  private counts = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  add(key: string): void {
    const count = this.counts.get(key);
    if (count !== undefined) {
      this.counts.set(key, count + 1);
      return;
    }
    if (this.counts.size >= this.capacity) this.prune();
    this.counts.set(key, 1);
  }

  private prune(): void {
    const kept = [...this.counts].sort((a, b) => b[1] - a[1]).slice(0, this.capacity >> 1);
    this.counts = new Map(kept);
  }

  /** Every kept key with its count (to add up the workers' counters). */
  entries(): [string, number][] {
    return [...this.counts];
  }

  top(n: number): { key: string; count: number }[] {
    return topOf(this.entries(), n);
  }
}

/** The `n` largest counts of `entries`, largest first (also for counts added up across workers). */
export function topOf(entries: readonly [string, number][], n: number): { key: string; count: number }[] {
  return [...entries].sort((a, b) => b[1] - a[1]).slice(0, n).map(([key, count]) => ({ key, count }));
}
