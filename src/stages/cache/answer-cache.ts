// The answer store: packed upstream answers (wire/packed-answer.ts: the bytes plus the
// offsets of their TTLs, CNAME targets and addresses, one Buffer each) keyed by the query's
// cache key (qname, qtype, qclass, EDNS/DO), in an LRU with a lifetime per entry. A hit is
// served by patching numbers, not by decoding. What to keep and for how long is the cache
// stage's decision (stage.ts); this is only where answers are kept.
import { LRUCache } from 'lru-cache';
import type { PackedAnswer } from '../../wire/packed-answer.js';

/** Where answers are kept: this LRU today; a store shared by a fleet may stand in later. */
export interface AnswerStore {
  get(key: string): PackedAnswer | undefined;
  put(key: string, answer: PackedAnswer, ttlSeconds: number): void;
  readonly size: number;
}

export class AnswerCache implements AnswerStore {
  private readonly lru: LRUCache<string, PackedAnswer> | null;
  hits = 0;
  misses = 0;

  /** `size` 0 turns the cache off. */
  constructor(size: number) {
    this.lru = size > 0 ? new LRUCache<string, PackedAnswer>({ max: size }) : null;
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  get(key: string): PackedAnswer | undefined {
    const entry = this.lru?.get(key);
    if (entry === undefined) this.misses++;
    else this.hits++;
    return entry;
  }

  /** The entry without counting a hit or refreshing its place (for `check`, not for queries). */
  peek(key: string): PackedAnswer | undefined {
    return this.lru?.peek(key);
  }

  put(key: string, answer: PackedAnswer, ttlSeconds: number): void {
    if (this.lru !== null && ttlSeconds > 0) this.lru.set(key, answer, { ttl: ttlSeconds * 1000 });
  }
}
