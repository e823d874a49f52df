// Cache sharing. The answer store stays the in-memory LRU that queries read; answers put
// into it are also queued and written to Redis every `flushMs` in one pipelined batch
// (SET with the entry's lifetime), off the query path. A node that starts with an empty
// cache reads up to `warmMax` entries from Redis before it answers. Redis is never asked
// while a query waits.
import { AnswerCache } from '../stages/cache/answer-cache.js';
import type { PackedAnswer } from '../wire/packed-answer.js';
import { KEYS } from './keys.js';
import type { RedisLink } from './link.js';

/** The most entries one flush writes; more wait for the next (a burst must not flood Redis). */
const MAX_BATCH = 5000;

export class WriteThroughCache extends AnswerCache {
  private keys: string[] = [];
  private answers: PackedAnswer[] = [];
  private ttls: number[] = [];
  private link: RedisLink | null = null;
  private timer: NodeJS.Timeout | null = null;
  written = 0;
  dropped = 0;
  warmed = 0;

  /** Starts writing through to `link` every `flushMs`. */
  share(link: RedisLink, flushMs: number): void {
    this.link = link;
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  override put(key: string, answer: PackedAnswer, ttlSeconds: number): void {
    super.put(key, answer, ttlSeconds);
    if (this.link === null || ttlSeconds <= 0) return;
    // While Redis is away the queue stays bounded: the shared cache is a help, not a duty.
    if (this.keys.length >= MAX_BATCH * 4) {
      this.dropped++;
      return;
    }
    this.keys.push(key);
    this.answers.push(answer);
    this.ttls.push(ttlSeconds);
  }

  /** Writes the queued answers in one pipelined batch. */
  async flush(): Promise<void> {
    const link = this.link;
    if (link === null || this.keys.length === 0) return;
    if (!link.connected) {
      if (this.keys.length >= MAX_BATCH * 4) this.clearQueue();
      return;
    }
    const n = Math.min(this.keys.length, MAX_BATCH);
    const keys = this.keys.splice(0, n);
    const answers = this.answers.splice(0, n);
    const ttls = this.ttls.splice(0, n);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) writes.push(link.send(['SET', KEYS.cache(keys[i]!), answers[i]!, 'EX', String(ttls[i])]));
    const results = await Promise.allSettled(writes);
    this.written += results.filter((r) => r.status === 'fulfilled').length;
  }

  private clearQueue(): void {
    this.dropped += this.keys.length;
    this.keys = [];
    this.answers = [];
    this.ttls = [];
  }

  /** Fills an empty cache from Redis: at most `max` entries, for at most `budgetMs`. */
  async warm(link: RedisLink, max: number, budgetMs: number): Promise<number> {
    if (!link.connected || this.size > 0 || max <= 0) return 0;
    const until = Date.now() + budgetMs;
    let cursor = '0';
    let loaded = 0;
    try {
      do {
        const [next, keys] = await link.send<[string, string[]]>(['SCAN', cursor, 'MATCH', KEYS.cachePattern, 'COUNT', '500']);
        cursor = next;
        if (keys.length === 0) continue;
        const batch = keys.slice(0, max - loaded);
        const values = await link.sendForBuffers<(Buffer | null)[]>(['MGET', ...batch]);
        const ttls = await Promise.all(batch.map((k) => link.send<number>(['PTTL', k])));
        for (let i = 0; i < batch.length; i++) {
          const v = values[i];
          const ttl = Math.floor(ttls[i]! / 1000);
          if (!Buffer.isBuffer(v) || ttl <= 0 || !plausiblePacked(v)) continue;
          // A copy of its own size: the reply's buffer may be a slice of a larger one.
          super.put(Buffer.from(batch[i]!.slice(KEYS.cache('').length), 'base64').toString('latin1'), Buffer.from(v), ttl);
          loaded++;
        }
      } while (cursor !== '0' && loaded < max && Date.now() < until);
    } catch {
      // Redis went away while warming: start with what was read.
    }
    this.warmed = loaded;
    return loaded;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Only data is read from Redis: a value that is not a well-formed packed answer is skipped. */
function plausiblePacked(p: Buffer): boolean {
  if (p.length < 16 + 12) return false;
  const tables = 16 + 2 * (p.readUInt16BE(8) + p.readUInt16BE(10) + 3 * p.readUInt16BE(12));
  const wireStart = p.readUInt16BE(14);
  const storedAt = p.readDoubleLE(0);
  return wireStart === tables && wireStart + 12 <= p.length && Number.isFinite(storedAt) && storedAt > 0;
}

