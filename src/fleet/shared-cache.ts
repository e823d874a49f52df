// Cache sharing. The answer store stays the in-memory LRU that queries read; answers put
// into it are also queued and written to Redis every `flushMs` in one pipelined batch
// (SET with the entry's lifetime), off the query path, and the same batch is published
// once on a channel so that the running nodes put it into their own memory. A node that
// starts with an empty cache reads up to `warmMax` entries from Redis before it answers.
// Redis is never asked while a query waits.
import { AnswerCache } from '../stages/cache/answer-cache.js';
import type { PackedAnswer } from '../wire/packed-answer.js';
import { CHANNELS, KEYS } from './keys.js';
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

  received = 0;
  private node = '';
  /** False in the primary process of --workers: it only writes the workers' answers to Redis and hands batches on. */
  keepInMemory = true;
  /** Another node's batch, as received (the primary process of --workers hands it to its workers). */
  onBatch: ((message: Buffer) => void) | null = null;
  /** A worker of --workers: batches go to the primary process (which writes them to Redis) instead of a link. */
  private relayTo: ((batch: Buffer) => void) | null = null;

  /** In a worker of --workers: every `flushMs` the queued answers go to `send` as one batch. */
  relay(send: (batch: Buffer) => void, flushMs: number, node: string): void {
    this.relayTo = send;
    this.node = node;
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  /** In a worker: a batch handed on by the primary process (another node's, or a sibling worker's). */
  takeBatch(message: Buffer): void {
    const batch = decodeBatch(message);
    if (batch === null) return;
    for (const e of batch.entries) {
      if (!plausiblePacked(e.answer)) continue;
      super.put(e.key, e.answer, e.ttl);
      this.received++;
    }
  }

  /** In the primary process of --workers: a worker's batch, queued to be written to Redis like this node's own. */
  queueBatch(message: Buffer): void {
    const batch = decodeBatch(message);
    if (batch === null) return;
    for (const e of batch.entries) {
      if (!plausiblePacked(e.answer) || e.ttl <= 0) continue;
      if (this.keys.length >= MAX_BATCH * 4) {
        this.dropped++;
        continue;
      }
      this.keys.push(e.key);
      this.answers.push(e.answer);
      this.ttls.push(e.ttl);
    }
  }

  /** Starts writing through to `link` every `flushMs`, and taking in the other nodes' batches. */
  async share(link: RedisLink, flushMs: number, node: string): Promise<void> {
    this.link = link;
    this.node = node;
    await link.subscribeBuffers(CHANNELS.cache, (message) => this.receive(message)).catch(() => undefined);
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  override put(key: string, answer: PackedAnswer, ttlSeconds: number): void {
    super.put(key, answer, ttlSeconds);
    if ((this.link === null && this.relayTo === null) || ttlSeconds <= 0) return;
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
    if (this.relayTo !== null) {
      if (this.keys.length === 0) return;
      const n = Math.min(this.keys.length, MAX_BATCH);
      this.relayTo(encodeBatch(this.node, this.keys.splice(0, n), this.answers.splice(0, n), this.ttls.splice(0, n)));
      this.written += n;
      return;
    }
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
    writes.push(link.send(['PUBLISH', CHANNELS.cache, encodeBatch(this.node, keys, answers, ttls)]));
    const results = await Promise.allSettled(writes);
    this.written += results.filter((r) => r.status === 'fulfilled').length;
  }

  /** Another node's batch: into memory (not written back). Only well-formed data is taken. */
  private receive(message: Buffer): void {
    const batch = decodeBatch(message);
    if (batch === null || batch.node === this.node) return;
    this.onBatch?.(message);
    if (!this.keepInMemory) return;
    for (const e of batch.entries) {
      if (!plausiblePacked(e.answer)) continue;
      super.put(e.key, e.answer, e.ttl);
      this.received++;
    }
  }

  private clearQueue(): void {
    this.dropped += this.keys.length;
    this.keys = [];
    this.answers = [];
    this.ttls = [];
  }

  /** Fills an empty cache from Redis: at most `max` entries, for at most `budgetMs`. */
  async warm(link: RedisLink, max: number, budgetMs: number): Promise<number> {
    if (!link.connected || this.size > 0 || max <= 0 || !this.keepInMemory) return 0;
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


/**
 * A batch on the channel: u8 node-name length, the name, then per entry: u16 key length,
 * the key (latin1), u32 lifetime in seconds, u32 answer length, the packed answer.
 */
export function encodeBatch(node: string, keys: string[], answers: PackedAnswer[], ttls: number[]): Buffer {
  const name = Buffer.from(node, 'utf8');
  let size = 1 + name.length;
  for (let i = 0; i < keys.length; i++) size += 2 + keys[i]!.length + 4 + 4 + answers[i]!.length;
  const out = Buffer.allocUnsafe(size);
  let off = out.writeUInt8(name.length, 0);
  off += name.copy(out, off);
  for (let i = 0; i < keys.length; i++) {
    off = out.writeUInt16BE(keys[i]!.length, off);
    off += out.write(keys[i]!, off, 'latin1');
    off = out.writeUInt32BE(ttls[i]!, off);
    off = out.writeUInt32BE(answers[i]!.length, off);
    off += answers[i]!.copy(out, off);
  }
  return out;
}

export function decodeBatch(b: Buffer): { node: string; entries: { key: string; answer: Buffer; ttl: number }[] } | null {
  if (b.length < 1 || b.length < 1 + b[0]!) return null;
  const node = b.toString('utf8', 1, 1 + b[0]!);
  const entries: { key: string; answer: Buffer; ttl: number }[] = [];
  let off = 1 + b[0]!;
  while (off < b.length) {
    if (off + 2 > b.length) return null;
    const kl = b.readUInt16BE(off);
    off += 2;
    if (off + kl + 8 > b.length) return null;
    const key = b.toString('latin1', off, off + kl);
    off += kl;
    const ttl = b.readUInt32BE(off);
    const al = b.readUInt32BE(off + 4);
    off += 8;
    if (off + al > b.length) return null;
    // Its own memory: the cache keeps it (a slice would keep the whole message alive).
    const answer = Buffer.allocUnsafeSlow(al);
    b.copy(answer, 0, off, off + al);
    off += al;
    entries.push({ key, answer, ttl });
  }
  return { node, entries };
}
