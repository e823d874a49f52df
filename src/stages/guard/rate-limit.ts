// Per-client limits, so that no client can take more than its share of the server:
// - a token bucket per client address (rate, burst) and one per network (/24 for IPv4,
//   /56 for IPv6: what one household or one attacker usually holds), which only queries that
//   passed their address's bucket draw from, so one flooding address cannot empty its
//   neighbours' shared bucket;
// - past the limit a query is answered REFUSED while the address's refusal budget lasts
//   (a bucket of its own), and dropped beyond it: a flood gets a few refusals, not an answer
//   per packet;
// - queries waiting for the upstream, per address and in all (`enter`/`leave`).
// Memory is fixed at construction: set-associative tables in typed arrays; a new address
// replaces the entry seen least recently in its set of WAYS. A forgotten address starts again
// with a full bucket, so a flood of spoofed addresses makes the limiter more lenient, never
// stricter. `take` runs for every query: no object, string or closure is made per call.
import { randomFillSync } from 'node:crypto';
import { cidrContains, type Cidr } from '../policy/cidr.js';

export const RATE_OK = 0;
export const RATE_REFUSE = 1;
export const RATE_DROP = 2;
export type RateVerdict = typeof RATE_OK | typeof RATE_REFUSE | typeof RATE_DROP;

/** What `enter` returns instead of a ticket when the query must not wait for the upstream. */
export const INFLIGHT_REFUSE = -1;
export const INFLIGHT_DROP = -2;

export interface RateLimitOptions {
  /** Queries per second one client address may send, sustained; 0 = no rate limit. */
  rate: number;
  /** Queries an address may send at once after a quiet spell (the bucket's size). */
  burst: number;
  /** The same for all addresses of one network together (0 = no network limit). */
  networkRate: number;
  networkBurst: number;
  /** Prefix lengths of a "network": /24 for IPv4, /56 for IPv6. */
  ipv4Prefix: number;
  ipv6Prefix: number;
  /** Over its limit, an address gets REFUSED this many times a second (burst: refuseBurst); the rest are dropped. */
  refuseRate: number;
  refuseBurst: number;
  /** Queries waiting for the upstream at once, per address (0 = no limit) and in all. */
  maxInflightPerClient: number;
  maxInflight: number;
  /** Addresses remembered (rounded up to a power of two); networks: a quarter as many. */
  tableSize: number;
  /** Never limited by rate or per-address in-flight (still counted in the total). */
  exempt: readonly Cidr[];
}

export const DEFAULT_RATE_LIMIT: Readonly<RateLimitOptions> = {
  rate: 200,
  burst: 1000,
  networkRate: 1000,
  networkBurst: 5000,
  ipv4Prefix: 24,
  ipv6Prefix: 56,
  refuseRate: 20,
  refuseBurst: 40,
  maxInflightPerClient: 256,
  maxInflight: 8192,
  tableSize: 65536,
  exempt: [],
};

/** Counters for metrics (they only grow) — see docs/limits.md for their names. */
export interface RateLimitCounters {
  /** Over the rate, answered REFUSED / dropped. */
  rateRefused: number;
  rateDropped: number;
  /** Over an in-flight limit, answered REFUSED / dropped. */
  inflightRefused: number;
  inflightDropped: number;
  /** Entries replaced by newer addresses (a sign of many distinct, perhaps spoofed, clients). */
  evicted: number;
}

/** What happened since the last report: for one log line now and then, not one per query. */
export interface RateLimitReport {
  limited: number;
  refused: number;
  dropped: number;
  /** Distinct addresses limited. */
  clients: number;
  /** One of them (the last one limited). */
  example: string;
}

const WAYS = 4;

/** Buffer's fill() and readInt32BE() cross into C++ or check their arguments: too dear per query. */
function clear(b: Buffer): void {
  for (let i = 0; i < 16; i++) b[i] = 0;
}

function word(b: Buffer, at: number): number {
  return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
}

/** A fixed table of token buckets keyed by 128-bit keys (IPv4 as IPv4-mapped IPv6). */
class BucketTable {
  readonly size: number;
  readonly keys: Int32Array;
  readonly used: Uint8Array;
  readonly tokens: Float64Array;
  readonly refuseTokens: Float64Array;
  readonly updated: Float64Array;
  readonly inflight: Uint32Array;
  readonly generation: Uint32Array;
  readonly limitedEpoch: Uint32Array;
  evicted = 0;

  constructor(size: number, private readonly seed: number, private readonly withInflight: boolean) {
    let n = WAYS;
    while (n < size) n *= 2;
    this.size = n;
    this.keys = new Int32Array(n * 4);
    this.used = new Uint8Array(n);
    this.tokens = new Float64Array(n);
    this.refuseTokens = new Float64Array(withInflight ? n : 0);
    this.updated = new Float64Array(n);
    this.inflight = new Uint32Array(withInflight ? n : 0);
    this.generation = new Uint32Array(withInflight ? n : 0);
    this.limitedEpoch = new Uint32Array(withInflight ? n : 0);
  }

  /** The slot holding key w0..w3, made (full buckets) when missing. */
  slot(w0: number, w1: number, w2: number, w3: number, now: number, burst: number, refuseBurst: number): number {
    // A keyed hash (random seed): which addresses share a set cannot be chosen by a client.
    let h = this.seed;
    h = Math.imul(h ^ w0, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15) ^ w1, 0x85ebca77);
    h = Math.imul(h ^ (h >>> 13) ^ w2, 0xc2b2ae3d);
    h = Math.imul(h ^ (h >>> 16) ^ w3, 0x27d4eb2f);
    h ^= h >>> 15;
    const base = (h & (this.size / WAYS - 1)) * WAYS;
    const keys = this.keys;
    let victim = -1;
    for (let s = base; s < base + WAYS; s++) {
      if (this.used[s] === 0) {
        if (victim < 0 || this.used[victim] !== 0) victim = s;
        continue;
      }
      const k = s * 4;
      if (keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3) return s;
      if (victim >= 0 && this.used[victim] === 0) continue;
      // Replace the entry seen least recently, preferring one with nothing in flight.
      if (victim < 0 || this.better(s, victim)) victim = s;
    }
    if (this.used[victim] !== 0) this.evicted++;
    const k = victim * 4;
    keys[k] = w0;
    keys[k + 1] = w1;
    keys[k + 2] = w2;
    keys[k + 3] = w3;
    this.used[victim] = 1;
    this.tokens[victim] = burst;
    this.updated[victim] = now;
    if (this.withInflight) {
      this.refuseTokens[victim] = refuseBurst;
      this.inflight[victim] = 0;
      this.generation[victim] = (this.generation[victim]! + 1) & 0xfffff;
      this.limitedEpoch[victim] = 0;
    }
    return victim;
  }

  private better(s: number, victim: number): boolean {
    if (this.withInflight) {
      const busy = this.inflight[s]! > 0;
      const victimBusy = this.inflight[victim]! > 0;
      if (busy !== victimBusy) return !busy;
    }
    return this.updated[s]! < this.updated[victim]!;
  }
}

export class RateLimiter {
  readonly options: Readonly<RateLimitOptions>;
  readonly counters: RateLimitCounters = { rateRefused: 0, rateDropped: 0, inflightRefused: 0, inflightDropped: 0, evicted: 0 };
  /** Queries waiting for the upstream now (all clients). */
  inflight = 0;
  private readonly addresses: BucketTable;
  private readonly networks: BucketTable;
  /** The address being looked at: 16 bytes (IPv4 as ::ffff:a.b.c.d), and its family. */
  private readonly bytes = Buffer.alloc(16);
  private readonly groups = new Uint16Array(8);
  private family: 4 | 6 = 4;
  private readonly perMs: number;
  private readonly networkPerMs: number;
  private readonly refusePerMs: number;
  private readonly v4Mask: number;
  private readonly v6Masks: Int32Array;
  // Since the last report.
  private epoch = 1;
  private report_ = { limited: 0, refused: 0, dropped: 0, clients: 0 };
  private example = '';

  constructor(options: Partial<RateLimitOptions> = {}) {
    const o = { ...DEFAULT_RATE_LIMIT, ...options };
    this.options = o;
    const seed = randomFillSync(new Int32Array(1))[0]!;
    this.addresses = new BucketTable(o.tableSize, seed, true);
    this.networks = new BucketTable(Math.max(WAYS, o.tableSize / 4), seed ^ 0x5bd1e995, false);
    this.perMs = o.rate / 1000;
    this.networkPerMs = o.networkRate / 1000;
    this.refusePerMs = o.refuseRate / 1000;
    this.v4Mask = o.ipv4Prefix <= 0 ? 0 : o.ipv4Prefix >= 32 ? -1 : (-1 << (32 - o.ipv4Prefix));
    this.v6Masks = new Int32Array(4);
    for (let i = 0; i < 4; i++) {
      const bits = Math.max(0, Math.min(32, o.ipv6Prefix - 32 * i));
      this.v6Masks[i] = bits === 0 ? 0 : bits === 32 ? -1 : (-1 << (32 - bits));
    }
  }

  /** Addresses being remembered now. */
  get tracked(): number {
    let n = 0;
    for (const u of this.addresses.used) n += u;
    return n;
  }

  /**
   * One query from `address` at `now` (milliseconds, monotonic: performance.now()): RATE_OK,
   * RATE_REFUSE (answer REFUSED) or RATE_DROP (send nothing).
   */
  take(address: string, now: number): RateVerdict {
    const o = this.options;
    if (o.rate <= 0 && o.networkRate <= 0) return RATE_OK;
    if (this.parse(address) && this.isExempt()) return RATE_OK;
    const a = this.addressSlot(now);
    const t = this.addresses;
    if (o.rate > 0 && t.tokens[a]! < 1) return this.over(a, address, false);
    if (o.networkRate > 0) {
      const n = this.networkSlot(now);
      const nt = this.networks;
      if (nt.tokens[n]! < 1) return this.over(a, address, false);
      nt.tokens[n]!--;
    }
    if (o.rate > 0) t.tokens[a]!--;
    return RATE_OK;
  }

  /**
   * A query from `address` starts waiting for the upstream (forwarded, or waiting on an
   * identical query already forwarded). Returns a ticket (>= 0) to hand to `leave` once it is
   * answered, or INFLIGHT_REFUSE / INFLIGHT_DROP when there are too many already.
   */
  enter(address: string, now: number): number {
    const o = this.options;
    const parsed = this.parse(address);
    const exempt = parsed && this.isExempt();
    const a = this.addressSlot(now);
    const t = this.addresses;
    if (this.inflight >= o.maxInflight || (!exempt && o.maxInflightPerClient > 0 && t.inflight[a]! >= o.maxInflightPerClient)) {
      return this.over(a, address, true) === RATE_REFUSE ? INFLIGHT_REFUSE : INFLIGHT_DROP;
    }
    this.inflight++;
    t.inflight[a]!++;
    return t.generation[a]! * t.size + a;
  }

  /** The query of this ticket got its answer (or gave up). Call once per ticket from `enter`. */
  leave(ticket: number): void {
    if (ticket < 0) return;
    if (this.inflight > 0) this.inflight--;
    const t = this.addresses;
    const slot = ticket % t.size;
    // The entry may have been given to another address since: then it is not its query.
    if (t.generation[slot] === Math.floor(ticket / t.size) && t.inflight[slot]! > 0) t.inflight[slot]!--;
  }

  /** What was limited since the last call, or null when nothing was: for one log line per interval. */
  report(): RateLimitReport | null {
    const r = this.report_;
    this.epoch = (this.epoch + 1) >>> 0 || 1;
    if (r.limited === 0) return null;
    const out: RateLimitReport = { ...r, example: this.example };
    this.report_ = { limited: 0, refused: 0, dropped: 0, clients: 0 };
    return out;
  }

  private over(a: number, address: string, inflight: boolean): RateVerdict {
    const t = this.addresses;
    const r = this.report_;
    r.limited++;
    if (t.limitedEpoch[a] !== this.epoch) {
      t.limitedEpoch[a] = this.epoch;
      r.clients++;
    }
    this.example = address;
    if (t.refuseTokens[a]! >= 1) {
      t.refuseTokens[a]!--;
      r.refused++;
      if (inflight) this.counters.inflightRefused++;
      else this.counters.rateRefused++;
      return RATE_REFUSE;
    }
    r.dropped++;
    if (inflight) this.counters.inflightDropped++;
    else this.counters.rateDropped++;
    return RATE_DROP;
  }

  /** The address's entry, its buckets refilled for the time since it was last seen. */
  private addressSlot(now: number): number {
    const b = this.bytes;
    const o = this.options;
    const t = this.addresses;
    const s = t.slot(word(b, 0), word(b, 4), word(b, 8), word(b, 12), now, o.burst, o.refuseBurst);
    this.counters.evicted = t.evicted;
    const elapsed = now - t.updated[s]!;
    if (elapsed > 0) {
      t.tokens[s] = Math.min(o.burst, t.tokens[s]! + elapsed * this.perMs);
      t.refuseTokens[s] = Math.min(o.refuseBurst, t.refuseTokens[s]! + elapsed * this.refusePerMs);
      t.updated[s] = now;
    }
    return s;
  }

  private networkSlot(now: number): number {
    const b = this.bytes;
    const o = this.options;
    const t = this.networks;
    let s: number;
    if (this.family === 4) {
      s = t.slot(0, 0, 0xffff, word(b, 12) & this.v4Mask, now, o.networkBurst, 0);
    } else {
      const m = this.v6Masks;
      s = t.slot(word(b, 0) & m[0]!, word(b, 4) & m[1]!, word(b, 8) & m[2]!, word(b, 12) & m[3]!, now, o.networkBurst, 0);
    }
    const elapsed = now - t.updated[s]!;
    if (elapsed > 0) {
      t.tokens[s] = Math.min(o.networkBurst, t.tokens[s]! + elapsed * this.networkPerMs);
      t.updated[s] = now;
    }
    return s;
  }

  private isExempt(): boolean {
    const exempt = this.options.exempt;
    for (let i = 0; i < exempt.length; i++) {
      const net = exempt[i]!;
      const hit = net.family === 4
        ? this.family === 4 && cidrContains(net, this.bytes, 12, 4)
        : cidrContains(net, this.bytes, 0, 16);
      if (hit) return true;
    }
    return false;
  }

  /**
   * Address text (as node gives it: `192.0.2.1`, `2001:db8::1`, `::ffff:192.0.2.1`,
   * `fe80::1%eth0`) -> this.bytes (IPv4 as ::ffff:a.b.c.d) and this.family, without making
   * anything. Text that is not an address becomes :: (all such share one entry) and false.
   */
  parse(text: string): boolean {
    const b = this.bytes;
    clear(b);
    let end = text.indexOf('%');
    if (end < 0) end = text.length;
    if (text.indexOf(':') < 0) {
      this.family = 4;
      if (!this.parseIpv4(text, 0, end, 12)) {
        clear(b);
        return false;
      }
      b[10] = 0xff;
      b[11] = 0xff;
      return true;
    }
    this.family = 6;
    if (!this.parseIpv6(text, end)) {
      clear(b);
      return false;
    }
    // IPv4-mapped: the IPv4 client it is.
    let mapped = b[10] === 0xff && b[11] === 0xff;
    for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
    if (mapped) this.family = 4;
    return true;
  }

  /** `a.b.c.d` in text[from..to) -> bytes[at..at+4). */
  private parseIpv4(text: string, from: number, to: number, at: number): boolean {
    let part = 0;
    let value = 0;
    let digits = 0;
    for (let i = from; i <= to; i++) {
      const c = i < to ? text.charCodeAt(i) : 0x2e;
      if (c >= 0x30 && c <= 0x39) {
        value = value * 10 + (c - 0x30);
        if (++digits > 3 || value > 255) return false;
      } else if (c === 0x2e) {
        if (digits === 0 || part > 3) return false;
        this.bytes[at + part++] = value;
        value = 0;
        digits = 0;
      } else {
        return false;
      }
    }
    return part === 4;
  }

  private parseIpv6(text: string, end: number): boolean {
    const g = this.groups;
    let count = 0;
    let gap = -1;
    let i = 0;
    if (text.charCodeAt(0) === 0x3a) {
      if (text.charCodeAt(1) !== 0x3a) return false;
      gap = 0;
      i = 2;
    }
    while (i < end) {
      // A dotted IPv4 tail takes the last two groups.
      let j = i;
      let hex = 0;
      let digits = 0;
      while (j < end) {
        const c = text.charCodeAt(j);
        const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
        if (d < 0) break;
        hex = hex * 16 + d;
        digits++;
        j++;
      }
      if (j < end && text.charCodeAt(j) === 0x2e) {
        if (count > 6) return false;
        let dotEnd = j;
        while (dotEnd < end && text.charCodeAt(dotEnd) !== 0x3a) dotEnd++;
        if (dotEnd !== end || !this.parseIpv4(text, i, end, 0)) return false;
        g[count++] = (this.bytes[0]! << 8) | this.bytes[1]!;
        g[count++] = (this.bytes[2]! << 8) | this.bytes[3]!;
        i = end;
        break;
      }
      if (digits === 0 || digits > 4 || count >= 8) return false;
      g[count++] = hex;
      i = j;
      if (i === end) break;
      if (text.charCodeAt(i) !== 0x3a) return false;
      i++;
      if (i < end && text.charCodeAt(i) === 0x3a) {
        if (gap >= 0) return false;
        gap = count;
        i++;
      } else if (i === end) {
        return false;
      }
    }
    if (gap < 0 ? count !== 8 : count > 7) return false;
    const b = this.bytes;
    clear(b);
    const tail = gap < 0 ? 0 : count - gap;
    const head = count - tail;
    for (let k = 0; k < head; k++) {
      b[2 * k] = g[k]! >> 8;
      b[2 * k + 1] = g[k]! & 0xff;
    }
    for (let k = 0; k < tail; k++) {
      const at = 2 * (8 - tail + k);
      b[at] = g[head + k]! >> 8;
      b[at + 1] = g[head + k]! & 0xff;
    }
    return true;
  }
}
