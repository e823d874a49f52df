// A bounded "most frequent" counter (the space-saving algorithm): at most `capacity` keys
// are kept; a new key replaces the smallest one and inherits its count, so heavy hitters
// are never lost and memory never grows with the number of distinct clients or names.
export class TopK {
  private readonly counts = new Map<string, number>();

  constructor(private readonly capacity: number) {}

  add(key: string): void {
    const count = this.counts.get(key);
    if (count !== undefined) {
      this.counts.set(key, count + 1);
      return;
    }
    if (this.counts.size < this.capacity) {
      this.counts.set(key, 1);
      return;
    }
    let minKey = '';
    let min = Infinity;
    for (const [k, c] of this.counts) {
      if (c < min) {
        min = c;
        minKey = k;
      }
    }
    this.counts.delete(minKey);
    this.counts.set(key, min + 1);
  }

  get size(): number {
    return this.counts.size;
  }

  top(n: number): { key: string; count: number }[] {
    return [...this.counts].sort((a, b) => b[1] - a[1]).slice(0, n).map(([key, count]) => ({ key, count }));
  }
}
