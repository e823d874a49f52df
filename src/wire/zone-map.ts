// Zones by name: which configured zone (a forward-zone, a locally served zone) holds a name,
// the most specific one winning. A handful to a few hundred zones; a lookup walks the
// query's labels from the full name up, one map lookup each, and only for names whose last
// label is the last label of some zone (most queries end in com, net, org ...).

export class ZoneMap<V> {
  private readonly zones = new Map<string, number>();
  private readonly values: V[] = [];
  /** The last label (as a key) of every zone, for the quick "none of ours" answer (few: arpa, lan, ...). */
  private readonly tlds: string[] = [];

  /** `key`: the zone's name as a key (wire/names.ts); a later set of the same zone replaces the value. */
  set(key: string, value: V): void {
    const known = this.zones.get(key);
    if (known !== undefined) {
      this.values[known] = value;
      return;
    }
    this.zones.set(key, this.values.length);
    this.values.push(value);
    const tld = lastLabel(key);
    if (!this.tlds.includes(tld)) this.tlds.push(tld);
  }

  get size(): number {
    return this.values.length;
  }

  /**
   * The most specific zone holding `key` (the name itself or a parent), as
   * `index * 256 + offset` (offset: where the zone's name starts inside the key), or -1.
   */
  match(key: string): number {
    if (this.values.length === 0 || !this.endsInOurs(key)) return -1;
    for (let off = 0; off < key.length; off += key.charCodeAt(off) + 1) {
      const i = this.zones.get(off === 0 ? key : key.slice(off));
      if (i !== undefined) return i * 256 + off;
    }
    return -1;
  }

  /** No allocation: this runs for every query. A false yes only costs the walk. */
  private endsInOurs(key: string): boolean {
    for (let i = 0; i < this.tlds.length; i++) if (key.endsWith(this.tlds[i]!)) return true;
    return false;
  }

  /** The value of a match (>= 0). */
  valueOf(match: number): V {
    return this.values[Math.floor(match / 256)]!;
  }

  entries(): [string, V][] {
    return [...this.zones].map(([k, i]) => [k, this.values[i]!]);
  }
}

/** The key of a key's last label ("\x03com" for "\x07example\x03com"). */
function lastLabel(key: string): string {
  let off = 0;
  let last = 0;
  while (off < key.length) {
    last = off;
    off += key.charCodeAt(off) + 1;
  }
  return last === 0 ? key : key.slice(last);
}
