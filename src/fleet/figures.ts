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

  /** Counts of a finished hour wait in `closed` until flushed. */
  private closed: { hour: string; fields: [string, number][] }[] = [];

  private rollHour(): void {
    this.closed.push({ hour: this.pendingHour, fields: this.takeFields() });
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
    this.rollHour();
    const batches = this.closed;
    this.closed = [];
    for (let i = 0; i < batches.length; i++) {
      const { hour, fields } = batches[i]!;
      if (fields.length === 0) continue;
      const key = KEYS.hour(hour);
      try {
        if (!link.connected) throw new Error('not connected');
        // One transaction: a cut connection adds all of these or none.
        await link.transaction([...fields.map(([field, n]) => ['HINCRBY', key, field, String(n)]), ['EXPIRE', key, String(HOURS_KEPT * 3600)]]);
        this.flushes++;
      } catch {
        // Redis is away: keep these counts for next time.
        this.closed.push(...batches.slice(i));
        return;
      }
    }
  }
}

export async function writeHeartbeat(link: RedisLink, beat: Heartbeat): Promise<void> {
  await link.send(['HSET', KEYS.nodes, beat.node, JSON.stringify(beat)]);
}
