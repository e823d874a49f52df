// Fleet figures. Every answered query is counted here (a number added in a Map: nothing
// allocated for a client or bundle seen before); every `flushMs` the counts are added into
// the current hour's hash in Redis with HINCRBY and forgotten, so that nodes add up. A
// heartbeat (node, site, version, uptime, policy version, totals, upstream health) is
// written every `heartbeatMs`; a node whose heartbeat is older than 3 beats is shown down.
import type { QueryEvent, QueryObserver } from '../observe/event.js';
import { hourOf, KEYS } from './keys.js';
import type { RedisLink } from './link.js';

export interface Heartbeat {
  node: string;
  site: string;
  role: 'primary' | 'replica';
  version: string;
  startedAt: number;
  at: number;
  policyVersion: number;
  rules: number;
  queries: number;
  blocked: number;
  upstreamHealthy: boolean;
  connected: boolean;
  heartbeatMs: number;
}

/** Hourly counts kept this long in Redis (the history roll-ups' retention). */
export const HOURS_KEPT = 90 * 24;

export class FleetFigures implements QueryObserver {
  queries = 0;
  blocked = 0;
  /** Not yet flushed: per client [queries, blocked], per bundle blocked. */
  private pendingQueries = 0;
  private pendingBlocked = 0;
  private clients = new Map<string, Float64Array>();
  private bundles = new Map<string, number>();
  private pendingHour = hourOf(Date.now());
  flushes = 0;

  constructor(private readonly node: string, private readonly site: string) {}

  answered(e: QueryEvent): void {
    const now = e.at;
    // An hour has turned: its counts go to its own hash first.
    if (now - this.hourStartMs() >= 3_600_000) this.rollHour();
    this.queries++;
    this.pendingQueries++;
    const client = e.query.clientAddress;
    let c = this.clients.get(client);
    if (c === undefined) {
      c = new Float64Array(2);
      this.clients.set(client, c);
    }
    c[0]!++;
    if (e.outcome !== 'blocked') return;
    this.blocked++;
    this.pendingBlocked++;
    c[1]!++;
    const bundle = e.rule()?.bundle ?? 'canary';
    this.bundles.set(bundle, (this.bundles.get(bundle) ?? 0) + 1);
  }

  private hourStartMs(): number {
    return Date.parse(`${this.pendingHour}:00:00.000Z`);
  }

  /** Counts taken from the counters and not yet in Redis, by hour and field (merged while Redis is away, so they stay small). */
  private closed = new Map<string, Map<string, number>>();

  private rollHour(): void {
    let fields = this.closed.get(this.pendingHour);
    if (fields === undefined) this.closed.set(this.pendingHour, (fields = new Map()));
    for (const [field, n] of this.takeFields()) fields.set(field, (fields.get(field) ?? 0) + n);
    this.pendingHour = hourOf(Date.now());
  }

  private takeFields(): [string, number][] {
    const f: [string, number][] = [];
    const { node, site } = this;
    if (this.pendingQueries > 0) f.push([`site|${site}|queries`, this.pendingQueries], [`node|${node}|queries`, this.pendingQueries]);
    if (this.pendingBlocked > 0) f.push([`site|${site}|blocked`, this.pendingBlocked], [`node|${node}|blocked`, this.pendingBlocked]);
    for (const [client, c] of this.clients) {
      if (c[0]! > 0) f.push([`client|${site}|${client}|queries`, c[0]!]);
      if (c[1]! > 0) f.push([`client|${site}|${client}|blocked`, c[1]!]);
    }
    for (const [bundle, n] of this.bundles) f.push([`bundle|${site}|${bundle}|blocked`, n]);
    this.pendingQueries = 0;
    this.pendingBlocked = 0;
    this.clients = new Map();
    this.bundles = new Map();
    return f;
  }

  /**
   * Adds the counts into Redis (one MULTI per hour touched: all or none). Counts that could
   * not be written are kept for the next flush.
   */
  async flush(link: RedisLink): Promise<void> {
    // One flush at a time: a second one waits, so that no count is added to a hash being written.
    while (this.flushing !== null) await this.flushing;
    this.flushing = this.flushOnce(link).finally(() => {
      this.flushing = null;
    });
    await this.flushing;
  }

  private flushing: Promise<void> | null = null;

  private async flushOnce(link: RedisLink): Promise<void> {
    this.rollHour();
    if (!link.connected) return;
    for (const [hour, fields] of [...this.closed]) {
      if (fields.size === 0) {
        this.closed.delete(hour);
        continue;
      }
      const key = KEYS.hour(hour);
      try {
        // One transaction: a cut connection adds all of these or none.
        await link.transaction([...[...fields].map(([field, n]) => ['HINCRBY', key, field, String(n)]), ['EXPIRE', key, String(HOURS_KEPT * 3600)]]);
        this.flushes++;
      } catch {
        // Redis is away: these counts stay for next time.
        return;
      }
      // Counted while this was written: they are in the counters, not in `fields`.
      if (this.closed.get(hour) === fields) this.closed.delete(hour);
    }
  }
}

export async function writeHeartbeat(link: RedisLink, beat: Heartbeat): Promise<void> {
  await link.send(['HSET', KEYS.nodes, beat.node, JSON.stringify(beat)]);
}
