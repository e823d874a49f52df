// Cache sharing. The answer store stays the in-memory LRU that queries read; answers put
// into it are also queued and, every `flushMs`, off the query path, stored in Redis as a few
// segments, not one key per answer, and each segment is published on a channel as it is (the
// running nodes put its answers into their own memory). Redis is read only by a node warming
// an empty cache at start, so a key per answer bought nothing and cost a command per answer
// (310 of the 327 commands per 1,000 queries, and most of fleet mode's cost on the DNS
// thread). A segment holds the answers of one flush whose lifetimes fall in the same power of
// two, and lives as long as the longest of them: an entry outlives its own lifetime in Redis
// by less than that factor, and warming drops it by its own. Redis is never asked while a
// query waits.
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
  /** Tells apart this process's segments written in the same millisecond. */
  private segmentSeq = 0;
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
    const publishes: Promise<unknown>[] = [];
    const sizes: number[] = [];
    const writtenAt = Date.now();
    // Each segment is encoded once, stored and published as it is: a flush is usually one or
    // two lifetime classes, and encoding the whole queue a second time for the channel cost as
    // much as the segments.
    for (const [life, idx] of lifetimeClasses(ttls)) {
      const segment = encodeBatch(this.node, idx.map((i) => keys[i]!), idx.map((i) => answers[i]!), idx.map((i) => ttls[i]!));
      writes.push(link.send(['SET', KEYS.cacheSegment(writtenAt, this.node, this.segmentSeq++), segment, 'EX', String(life)]));
      publishes.push(link.send(['PUBLISH', CHANNELS.cache, segment]));
      sizes.push(idx.length);
    }
    const results = await Promise.allSettled([...writes, ...publishes]);
    for (let i = 0; i < sizes.length; i++) if (results[i]!.status === 'fulfilled') this.written += sizes[i]!;
  }

  /** Another node's batch: into memory (not written back). Only well-formed data is taken. */
  private receive(message: Buffer): void {
    // The channel brings back this node's own batches too: told apart by the name alone,
    // before an answer is copied (every flush of a busy node would otherwise be decoded twice).
    if (isFrom(message, this.node)) return;
    const batch = decodeBatch(message);
    if (batch === null) return;
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

  /**
   * Fills an empty cache from Redis: the newest segments first, at most `max` entries, for
   * at most `budgetMs`. An entry keeps what is left of its own lifetime; a name in several
   * segments takes the newest answer.
   */
  async warm(link: RedisLink, max: number, budgetMs: number): Promise<number> {
    if (!link.connected || this.size > 0 || max <= 0 || !this.keepInMemory) return 0;
    this.warmed = await readSegments(link, max, budgetMs, (key, answer, ttl) => super.put(key, answer, ttl));
    return this.warmed;
  }

  /**
   * The primary process of --workers (which keeps no cache): reads the segments as `warm`
   * does and hands them to the workers in batches of up to 1,000 answers.
   */
  async warmWorkers(link: RedisLink, max: number, budgetMs: number, send: (batch: Buffer) => void): Promise<number> {
    if (!link.connected || max <= 0) return 0;
    let keys: string[] = [];
    let answers: PackedAnswer[] = [];
    let ttls: number[] = [];
    const handOn = (): void => {
      if (keys.length > 0) send(encodeBatch(this.node, keys, answers, ttls));
      keys = [];
      answers = [];
      ttls = [];
    };
    this.warmed = await readSegments(link, max, budgetMs, (key, answer, ttl) => {
      keys.push(key);
      answers.push(answer);
      ttls.push(ttl);
      if (keys.length === 1000) handOn();
    });
    handOn();
    return this.warmed;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * Reads the shared cache's segments, newest first, and gives `take` each answer not already
 * taken from a newer segment, with what is left of its lifetime: at most `max`, for at most
 * `budgetMs`. Returns how many were taken. Redis going away ends it with what was read.
 */
async function readSegments(link: RedisLink, max: number, budgetMs: number, take: (key: string, answer: Buffer, ttl: number) => void): Promise<number> {
  const until = Date.now() + budgetMs;
  let taken = 0;
  try {
    const segments: { key: string; writtenAt: number }[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await link.send<[string, string[]]>(['SCAN', cursor, 'MATCH', KEYS.cacheSegmentPattern, 'COUNT', '1000']);
      cursor = next;
      for (const key of keys) {
        const writtenAt = segmentTime(key);
        if (writtenAt !== null) segments.push({ key, writtenAt });
      }
    } while (cursor !== '0' && Date.now() < until);
    segments.sort((x, y) => y.writtenAt - x.writtenAt);
    const seen = new Set<string>();
    for (let s = 0; s < segments.length && taken < max && Date.now() < until; s += 16) {
      const group = segments.slice(s, s + 16);
      const values = await link.sendForBuffers<(Buffer | null)[]>(['MGET', ...group.map((g) => g.key)]);
      const now = Date.now();
      for (let g = 0; g < group.length && taken < max; g++) {
        const value = values[g];
        const batch = Buffer.isBuffer(value) ? decodeBatch(value) : null;
        if (batch === null) continue;
        // A time from the future is not trusted to lengthen a lifetime.
        const ageSeconds = Math.max(0, Math.floor((now - group[g]!.writtenAt) / 1000));
        for (const e of batch.entries) {
          const ttl = e.ttl - ageSeconds;
          if (ttl <= 0 || seen.has(e.key) || !plausiblePacked(e.answer)) continue;
          seen.add(e.key);
          take(e.key, e.answer, ttl);
          if (++taken >= max) break;
        }
      }
    }
  } catch {
    // Redis went away while warming: start with what was read.
  }
  return taken;
}

/**
 * The queued answers grouped by lifetime class (the power of two at or above each lifetime):
 * [the segment's lifetime = the longest in the class, the answers' indexes].
 */
function lifetimeClasses(ttls: number[]): [number, number[]][] {
  const classes = new Map<number, [number, number[]]>();
  for (let i = 0; i < ttls.length; i++) {
    const ttl = ttls[i]!;
    const cls = 32 - Math.clz32(ttl - 1);
    const c = classes.get(cls);
    if (c === undefined) classes.set(cls, [ttl, [i]]);
    else {
      if (ttl > c[0]) c[0] = ttl;
      c[1].push(i);
    }
  }
  return [...classes.values()];
}

/** The write time in a segment's key (sinkhole:cache:seg:MS:SEQ:NODE), or null for another key. */
function segmentTime(key: string): number | null {
  const rest = key.slice(KEYS.cacheSegmentPattern.length - 1);
  const ms = Number(rest.slice(0, rest.indexOf(':')));
  return Number.isSafeInteger(ms) && ms > 0 ? ms : null;
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

/** Whether a batch was written by `node` (its name, the batch's first field), without decoding the rest. */
export function isFrom(b: Buffer, node: string): boolean {
  const n = b[0];
  return n !== undefined && n === Buffer.byteLength(node) && 1 + n <= b.length && b.toString('utf8', 1, 1 + n) === node;
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
