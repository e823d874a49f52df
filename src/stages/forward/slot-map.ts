// A Map for what is in flight (one entry per forwarded query, gone within milliseconds) whose
// hash table holds only small integers: the values live in an array of slots, and a slot is
// emptied when its entry goes.
//
// Why not a plain Map: a long-lived Map's table sits in V8's old generation, and V8 rehashes
// it (to a new table, also old) every few hundred insertions of short-lived entries. The
// table it leaves is garbage, but it still points at the values that were in it, and until
// the next full GC such a dead old object counts as a root for the young generation: every
// query still in flight at a rehash, and all it refers to (its Query, the forwarder's
// Attempt, the copy sent upstream), survived two scavenges and was promoted. Measured on W4
// (docs/performance.md, "2026-12-02, 18:00"): 1.2 MB promoted per scavenge, scavenges of
// 5-8 ms and a mark-compact every second or so; with this map, almost nothing. An array of
// slots is never rehashed: it grows to the most entries ever in flight and stays.
export class SlotMap<K, V> {
  private readonly index = new Map<K, number>();
  private readonly slots: (V | undefined)[] = [];
  private readonly free: number[] = [];

  get size(): number {
    return this.index.size;
  }

  get(key: K): V | undefined {
    const i = this.index.get(key);
    return i === undefined ? undefined : this.slots[i];
  }

  has(key: K): boolean {
    return this.index.has(key);
  }

  set(key: K, value: V): void {
    const i = this.index.get(key);
    if (i !== undefined) {
      this.slots[i] = value;
      return;
    }
    const slot = this.free.length > 0 ? this.free.pop()! : this.slots.length;
    this.slots[slot] = value;
    this.index.set(key, slot);
  }

  delete(key: K): boolean {
    const i = this.index.get(key);
    if (i === undefined) return false;
    this.index.delete(key);
    this.slots[i] = undefined;
    this.free.push(i);
    return true;
  }

  /** Calls `f` for every entry; `f` may delete the entry it is given (as a Map's iteration allows). */
  forEach(f: (value: V, key: K) => void): void {
    for (const [key, i] of this.index) f(this.slots[i]!, key);
  }

  values(): V[] {
    const out: V[] = [];
    for (const i of this.index.values()) out.push(this.slots[i]!);
    return out;
  }

  clear(): void {
    this.index.clear();
    this.slots.length = 0;
    this.free.length = 0;
  }
}
