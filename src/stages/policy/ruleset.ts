// The live rules: every name rule of every file in one map (name key -> rule number), the
// answer-IP rules in a list. Built whole beside the old set and swapped in by reference, so
// a query sees either the old rules or the new ones, never half of them.
import { cidrContains, type Cidr } from './cidr.js';
import { bundleId } from './bundle-ids.js';
import type { ListFile } from './list-file.js';
import { keyToText } from '../../wire/names.js';
import { runAll, runSliced, YIELD_EVERY } from './slices.js';

/** Where a rule is: its file, line and bundle (RuleRef without the text). */
export interface RuleSource {
  file: string;
  bundle: string;
  line: number;
}

export interface RuleRef {
  file: string;
  bundle: string;
  line: number;
  allow: boolean;
  /** The rule's domain as text (for name rules) or network (for IP rules). */
  rule: string;
}

/**
 * The name map and the suffix filter are split into SHARDS parts. A JS Map or Set rehashes
 * every entry in one step when it grows (27 ms at 512k entries on our machine), which would
 * hold up every query during a reload of a big list; small ones each grow in well under a
 * millisecond. An append copies the shards its names go into (RuleSet.extend): at a
 * million rules a shard holds ~4,000 names, copied in 0.2-0.6 ms, where 64 shards of
 * ~16,000 took 1.2-2.5 ms and left four times the garbage.
 */
const SHARDS = 256;

/**
 * Room left after the last rule in the per-rule arrays (RuleSet) and the per-key arrays of
 * a big file (list-file.ts), so that an append writes its rules in place instead of copying
 * arrays of a million entries: a copy per append (15 MB at a million rules) is what set off
 * the full collections, with marking steps of 20-99 ms, that held queries up during appends.
 */
export function withRoom(count: number): number {
  return count + (count >> 5) + 64;
}

/**
 * The per-rule arrays of a set and of the sets extended from it. A set extended from the
 * set that last wrote here writes its new rules after `used` in place; the set it extends
 * only ever reads below its own rule count, so it is not changed. Any other set (one
 * extended from an older set, or a second extension of the same set) copies.
 */
interface RuleArrays {
  fileOf: Uint16Array;
  indexOf: Uint32Array;
  sameName: Int32Array;
  /** Rules written by the last set that used these arrays. */
  used: number;
}

function newRuleArrays(count: number): RuleArrays {
  const room = withRoom(count);
  return { fileOf: new Uint16Array(room), indexOf: new Uint32Array(room), sameName: new Int32Array(room).fill(-1), used: count };
}

/**
 * Which shard holds key[off..], given `tail`, the hash of the key's last two labels: every
 * suffix a query looks up shares that tail, so only the suffix's first label is hashed here,
 * not the whole suffix again. The first label is what spreads one domain's many subdomains
 * (a list with 100,000 names under one domain) over every shard.
 */
function shardOf(key: string, off: number, tail: number): number {
  let h = tail;
  for (let i = off, end = off + 1 + key.charCodeAt(off); i < end; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) & (SHARDS - 1);
}

/** Where each label of the key being looked at starts; a name has at most 127 labels. */
const labelStarts = new Int32Array(128);

/** Fills labelStarts for `key`; returns its number of labels. */
function scanLabels(key: string): number {
  let n = 0;
  for (let off = 0; off < key.length && n < labelStarts.length; off += key.charCodeAt(off) + 1) labelStarts[n++] = off;
  return n;
}

/** Hash of the key's last two labels (labelStarts filled for it); 0 for a single label. */
function tailOf(key: string, labels: number): number {
  return labels < 2 ? 0 : suffixHash(key, labelStarts[labels - 2]!);
}

/** The suffix filter's bit for rules of `labels` labels; 31 and more share the top bit. */
function depthBit(labels: number): number {
  return 1 << Math.min(labels, 31);
}

/**
 * A name match in one number, so that matching allocates nothing: the rule number g and
 * where the matched suffix starts inside the key (a wire name is at most 255 bytes).
 */
export function matchOf(g: number, offset: number): number {
  return g * 256 + offset;
}

/** The rule number of a Match. */
export function ruleOf(match: number): number {
  return Math.floor(match / 256);
}

/** Where, inside the key, the matched rule's name starts (blocked answers point their owner name there). */
export function offsetOf(match: number): number {
  return match % 256;
}

/** Rules appended to files[fileIndex] since the rule set being extended: its keys from index `from` on are new. */
export interface FileAppend {
  fileIndex: number;
  from: number;
}

export class RuleSet {
  /** name key -> rule number g (the rule is keys[indexOf[g]] of files[fileOf[g]]), in shards. */
  private readonly names: Map<string, number>[];
  /** Rules of a single label (a whole TLD such as `zip`): few, and looked up last. */
  private topLevel: Map<string, number>;
  private nameCount = 0;
  /** Shared with the sets extended from this one (see RuleArrays); read only below nameRuleCount. */
  private arrays!: RuleArrays;
  /** False while the arrays are shared with the set extended (which reads them below baseCount). */
  private ownArrays = true;
  /** Rules of the set extended (0 for a full build): entries below it must not change. */
  private readonly baseCount: number;
  private fileOf!: Uint16Array;
  /**
   * Where rule g is in its file. Rule numbers follow the files in order at a full build;
   * rules appended later get the next numbers, so that an append renumbers nothing.
   */
  private indexOf!: Uint32Array;
  /** Each file's bundle as an index (bundle-ids.ts), for the group tables. */
  readonly fileBundle: Uint16Array;
  /**
   * The next rule with the same name in another place (file), or -1: the map holds the
   * first, and a group that does not block the first's bundle may block another's.
   */
  private sameName!: Int32Array;
  private readonly ipRules: { cidr: Cidr; file: number; line: number }[] = [];
  /**
   * Hash of the last two labels of every rule's name (`hotmail.com` for
   * `messenger.hotmail.com`) -> a bit per label count of the rules under it. Most queries are
   * for names under none of them: one lookup here answers "no rule" instead of one per label;
   * for the rest only suffixes as long as some rule are looked up. Hashes, not strings: a
   * million rules add no million objects for the garbage collector (a collision only costs
   * lookups that find nothing).
   */
  private readonly suffixes: Map<number, number>[];
  /**
   * Maps this set may change while it is built. An extended set starts with the maps of the
   * set it extends (which stays in force until the swap, so it must not change): a map is
   * copied the first time a rule goes into it.
   */
  private readonly ownNames: boolean[];
  private readonly ownSuffixes: boolean[];
  private ownTopLevel: boolean;
  readonly nameRuleCount: number;

  /** Builds the whole set now; see RuleSet.build for building in time slices, RuleSet.extend for an append. */
  constructor(readonly files: readonly ListFile[], fillNow = true, base?: RuleSet) {
    let total = 0;
    for (const f of files) total += f.lines.length;
    this.nameRuleCount = total;
    this.fileBundle = Uint16Array.from(files, (f) => bundleId(f.bundle));
    this.baseCount = base?.nameRuleCount ?? 0;
    const shared = base?.arrays;
    if (shared !== undefined && shared.used === base!.nameRuleCount && shared.fileOf.length >= total) {
      // In place: the rules of `base` stay where they are, the new ones go after them.
      shared.used = total;
      this.useArrays(shared);
      this.ownArrays = false;
    } else if (base !== undefined) {
      // Typed arrays copy with a memcpy: a few ms for a million rules, once per ~30,000 rules appended.
      this.copyArrays(base.fileOf, base.indexOf, base.sameName);
    } else {
      this.useArrays(newRuleArrays(total));
    }
    if (base === undefined) {
      this.names = Array.from({ length: SHARDS }, () => new Map<string, number>());
      this.suffixes = Array.from({ length: SHARDS }, () => new Map<number, number>());
      this.topLevel = new Map();
      this.ownNames = new Array<boolean>(SHARDS).fill(true);
      this.ownSuffixes = new Array<boolean>(SHARDS).fill(true);
      this.ownTopLevel = true;
    } else {
      this.names = base.names.slice();
      this.suffixes = base.suffixes.slice();
      this.topLevel = base.topLevel;
      this.ownNames = new Array<boolean>(SHARDS).fill(false);
      this.ownSuffixes = new Array<boolean>(SHARDS).fill(false);
      this.ownTopLevel = false;
      this.nameCount = base.nameCount;
    }
    if (fillNow) runAll(this.fill());
  }

  /** A rule set filled in time slices: the server keeps answering while it is built. */
  static async build(files: readonly ListFile[]): Promise<RuleSet> {
    const set = new RuleSet(files, false);
    await runSliced(set.fill());
    return set;
  }

  /**
   * `base` with rules appended to some of its files, in time slices: only the new rules are
   * placed, and only the maps they go into are copied. `files` are base's files in the same
   * order, the appended ones replaced by their longer versions. `base` is left as it was.
   */
  static async extend(base: RuleSet, files: readonly ListFile[], appends: readonly FileAppend[]): Promise<RuleSet> {
    const set = new RuleSet(files, false, base);
    await runSliced(set.add(base.nameRuleCount, appends));
    return set;
  }

  /** Views of `arrays` as long as this set. */
  private useArrays(arrays: RuleArrays): void {
    this.arrays = arrays;
    this.fileOf = arrays.fileOf.subarray(0, this.nameRuleCount);
    this.indexOf = arrays.indexOf.subarray(0, this.nameRuleCount);
    this.sameName = arrays.sameName.subarray(0, this.nameRuleCount);
  }

  /** Arrays of this set's own, with room for appends, holding the given ones' entries. */
  private copyArrays(fileOf: Uint16Array, indexOf: Uint32Array, sameName: Int32Array): void {
    const arrays = newRuleArrays(this.nameRuleCount);
    arrays.fileOf.set(fileOf);
    arrays.indexOf.set(indexOf);
    arrays.sameName.set(sameName);
    this.useArrays(arrays);
    this.ownArrays = true;
  }

  private *fill(): Generator<void> {
    const files = this.files;
    let g = 0;
    for (let fileIndex = 0; fileIndex < files.length; fileIndex++) {
      const f = files[fileIndex]!;
      this.fileOf.fill(fileIndex, g, g + f.lines.length);
      for (let i = 0; i < f.lines.length; i++, g++) {
        if ((g & (YIELD_EVERY - 1)) === 0) yield;
        this.indexOf[g] = i;
        this.place(g, f.keys[i]!);
      }
      for (const r of f.ipRules) this.ipRules.push({ cidr: r.cidr, file: fileIndex, line: r.line });
    }
  }

  private *add(firstNew: number, appends: readonly FileAppend[]): Generator<void> {
    let g = firstNew;
    for (const { fileIndex, from } of appends) {
      const f = this.files[fileIndex]!;
      for (let i = from; i < f.lines.length; i++, g++) {
        if ((g & (YIELD_EVERY - 1)) === 0) yield;
        this.fileOf[g] = fileIndex;
        this.indexOf[g] = i;
        // Shared arrays may hold what an abandoned extension wrote here.
        this.sameName[g] = -1;
        if (this.place(g, f.keys[i]!)) yield;
      }
    }
    // Answer-IP rules are few: taken again from the files, in file order.
    this.files.forEach((f, fileIndex) => {
      for (const r of f.ipRules) this.ipRules.push({ cidr: r.cidr, file: fileIndex, line: r.line });
    });
  }

  /**
   * Puts rule g (named `key`) into the maps. The first rule for a name wins (files in order,
   * lines in order), except that an allow rule beats a block rule of the same name (equal
   * specificity: allow wins); the others are chained behind it. Returns true when a map was
   * copied (a moment to give the event loop a turn).
   */
  private place(g: number, key: string): boolean {
    const labels = scanLabels(key);
    const tail = tailOf(key, labels);
    let copied = false;
    let map: Map<string, number>;
    if (labels < 2) {
      if (!this.ownTopLevel) {
        this.topLevel = new Map(this.topLevel);
        this.ownTopLevel = copied = true;
      }
      map = this.topLevel;
    } else {
      const shard = shardOf(key, 0, tail);
      if (!this.ownNames[shard]) {
        this.names[shard] = new Map(this.names[shard]);
        this.ownNames[shard] = copied = true;
      }
      map = this.names[shard]!;
    }
    const existing = map.get(key);
    if (existing === undefined) {
      map.set(key, g);
      this.nameCount++;
      if (labels >= 2) {
        const shard = tail & (SHARDS - 1);
        if (!this.ownSuffixes[shard]) {
          this.suffixes[shard] = new Map(this.suffixes[shard]);
          this.ownSuffixes[shard] = copied = true;
        }
        const filter = this.suffixes[shard]!;
        filter.set(tail, (filter.get(tail) ?? 0) | depthBit(labels));
      }
    } else if (this.precedes(g, existing)) {
      map.set(key, g);
      this.sameName[g] = existing;
    } else {
      if (existing < this.baseCount && !this.ownArrays) {
        // Chaining behind a rule of the set extended changes an entry it reads: this set
        // takes arrays of its own (rare: a name appended that an earlier file lists too).
        this.copyArrays(this.fileOf, this.indexOf, this.sameName);
        this.ownArrays = copied = true;
      }
      this.sameName[g] = this.sameName[existing]!;
      this.sameName[existing] = g;
    }
    return copied;
  }

  /** Whether rule g goes before rule h of the same name: allow first, then by file and line. */
  private precedes(g: number, h: number): boolean {
    const allowG = this.isAllow(g);
    if (allowG !== this.isAllow(h)) return allowG;
    // Only an append can place a rule of an earlier file after one of a later file.
    const fg = this.fileOf[g]!;
    const fh = this.fileOf[h]!;
    return fg < fh || (fg === fh && this.indexOf[g]! < this.indexOf[h]!);
  }

  /** Names in this set and not in `other`, counted in time slices (for the reload log line). */
  async countMissingFrom(other: RuleSet): Promise<number> {
    let missing = 0;
    const maps = [...this.names, this.topLevel];
    function* count(): Generator<void> {
      let n = 0;
      for (const map of maps) {
        for (const key of map.keys()) {
          if (!other.has(key)) missing++;
          if ((++n & (YIELD_EVERY - 1)) === 0) yield;
        }
      }
    }
    await runSliced(count());
    return missing;
  }

  get uniqueNames(): number {
    return this.nameCount;
  }

  get ipRuleCount(): number {
    return this.ipRules.length;
  }

  /**
   * The most specific rule for `key` (the name itself, then each parent) as a Match (see
   * matchOf), or -1. A name rule covers the name and everything below it, at label
   * boundaries only. With `fromOffset`, only suffixes starting at or after that offset
   * of the key (the parents of an earlier match) are looked at.
   */
  match(key: string, fromOffset = 0): number {
    if (this.nameCount === 0) return -1;
    const labels = scanLabels(key);
    let first = 0;
    while (first < labels && labelStarts[first]! < fromOffset) first++;
    if (labels >= 2) {
      const tail = tailOf(key, labels);
      const depths = this.suffixes[tail & (SHARDS - 1)]!.get(tail);
      if (depths !== undefined) {
        // Longest suffix first: the name itself, then each parent down to the last two labels.
        for (let i = first; i <= labels - 2; i++) {
          if ((depths & depthBit(labels - i)) === 0) continue;
          const off = labelStarts[i]!;
          const g = this.names[shardOf(key, off, tail)]!.get(off === 0 ? key : key.slice(off));
          if (g !== undefined) return matchOf(g, off);
        }
      }
    }
    if (this.topLevel.size > 0 && labels >= 1 && first <= labels - 1) {
      const off = labelStarts[labels - 1]!;
      const g = this.topLevel.get(off === 0 ? key : key.slice(off));
      if (g !== undefined) return matchOf(g, off);
    }
    return -1;
  }

  /** Whether `key` itself is a rule's name. */
  private has(key: string): boolean {
    const labels = scanLabels(key);
    return this.mapFor(key, labels, tailOf(key, labels)).has(key);
  }

  /** The map that holds `key` as a rule's name (labels and tail as scanLabels and tailOf give). */
  private mapFor(key: string, labels: number, tail: number): Map<string, number> {
    return labels < 2 ? this.topLevel : this.names[shardOf(key, 0, tail)]!;
  }

  /**
   * match() for one group: the most specific rule that counts for it, as a Match, or -1.
   * `active[base + bundle] === 1` says the bundle blocks for the group now (GroupPolicy's
   * table, base = group * stride). An allow rule counts for every group (it is returned;
   * the caller lets the name through); a block rule counts when its bundle is active, else
   * the walk goes on with the other rules of the same name, then with the parents. No
   * allocation beyond match()'s own. `first`: match(key), when the caller has it already.
   */
  matchFor(key: string, active: Uint8Array, base: number, first: number = this.match(key)): number {
    let m = first;
    while (m >= 0) {
      const g = ruleOf(m);
      const offset = offsetOf(m);
      if (this.isAllow(g)) return m;
      for (let r = g; r >= 0; r = this.sameName[r]!) {
        if (active[base + this.fileBundle[this.fileOf[r]!]!] === 1) return matchOf(r, offset);
      }
      m = this.match(key, offset + key.charCodeAt(offset) + 1);
    }
    return -1;
  }

  /** The bundle index (bundle-ids.ts) of rule g. */
  bundleOf(g: number): number {
    return this.fileBundle[this.fileOf[g]!]!;
  }

  /** Bundle indexes of the files that block for groups without block lines (not standby files). */
  enabledBundles(): number[] {
    const ids = new Set<number>();
    this.files.forEach((f, i) => {
      if (f.standby !== true) ids.add(this.fileBundle[i]!);
    });
    return [...ids];
  }

  isAllow(g: number): boolean {
    return this.files[this.fileOf[g]!]!.allow[this.indexOf[g]!] === 1;
  }

  /** describe(g) without the rule's text. */
  source(g: number): RuleSource {
    const file = this.files[this.fileOf[g]!]!;
    return { file: file.path, bundle: file.bundle, line: file.lines[this.indexOf[g]!]! };
  }

  describe(g: number): RuleRef {
    const file = this.files[this.fileOf[g]!]!;
    const i = this.indexOf[g]!;
    return { file: file.path, bundle: file.bundle, line: file.lines[i]!, allow: file.allow[i] === 1, rule: keyToText(file.keys[i]!) };
  }

  /** The rule number of keys[i] of files[fileIndex] (slow: for `sinkhole check`). */
  private ruleAt(fileIndex: number, i: number): number {
    for (let g = 0; g < this.nameRuleCount; g++) if (this.fileOf[g] === fileIndex && this.indexOf[g] === i) return g;
    return -1;
  }

  /** The first answer-IP rule whose network holds the address at bytes[offset..offset+length), or -1. */
  matchAddress(bytes: Buffer, offset: number, length: number): number {
    for (let i = 0; i < this.ipRules.length; i++) {
      if (cidrContains(this.ipRules[i]!.cidr, bytes, offset, length)) return i;
    }
    return -1;
  }

  /** matchAddress() for one group: only rules of bundles active in `active` at `base` (see matchFor). */
  matchAddressFor(bytes: Buffer, offset: number, length: number, active: Uint8Array, base: number): number {
    for (let i = 0; i < this.ipRules.length; i++) {
      const r = this.ipRules[i]!;
      if (active[base + this.fileBundle[r.file]!] === 1 && cidrContains(r.cidr, bytes, offset, length)) return i;
    }
    return -1;
  }

  /** The bundle index of answer-IP rule i. */
  addressRuleBundle(i: number): number {
    return this.fileBundle[this.ipRules[i]!.file]!;
  }

  describeAddressRule(i: number): RuleRef {
    const r = this.ipRules[i]!;
    const file = this.files[r.file]!;
    return { file: file.path, bundle: file.bundle, line: r.line, allow: false, rule: `ip:${r.cidr.text}` };
  }

  /** Every name rule in every file that covers `key` (for `sinkhole check`): slow, not for queries. */
  rulesCovering(key: string): RuleRef[] {
    const found: RuleRef[] = [];
    const suffixes = new Set<string>();
    for (let off = 0; off < key.length; off += key.charCodeAt(off) + 1) suffixes.add(key.slice(off));
    // In file and line order, as rules were numbered at a full build.
    for (let fileIndex = 0; fileIndex < this.files.length; fileIndex++) {
      const file = this.files[fileIndex]!;
      for (let i = 0; i < file.lines.length; i++) {
        if (suffixes.has(file.keys[i]!)) found.push(this.describe(this.ruleAt(fileIndex, i)));
      }
    }
    return found;
  }
}

/** FNV-1a over key[from..], kept to 30 bits so that it is always a small integer in V8. Used for shards and the suffix filter. */
function suffixHash(key: string, from: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}

