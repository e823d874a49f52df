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
  /** The start of pendingHour in ms, kept as a number: the check runs on every answered query. */
  private pendingHourStart = Date.parse(`${this.pendingHour}:00:00.000Z`);
  flushes = 0;

  constructor(private readonly node: string, private readonly site: string) {}

  answered(e: QueryEvent): void {
    const now = e.at;
    // An hour has turned: its counts go to its own hash first.
    if (now - this.pendingHourStart >= 3_600_000) this.rollHour();
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
    // Only the bundle is counted: ruleSource() finds it without building the rule's text.
    const bundle = (e.ruleSource === undefined ? e.rule() : e.ruleSource())?.bundle ?? 'canary';
    this.bundles.set(bundle, (this.bundles.get(bundle) ?? 0) + 1);
  }

  /** Counts taken from the counters and not yet in Redis, by hour and field (merged while Redis is away, so they stay small). */
  private closed = new Map<string, Map<string, number>>();

  private rollHour(): void {
    let fields = this.closed.get(this.pendingHour);
    if (fields === undefined) this.closed.set(this.pendingHour, (fields = new Map()));
    for (const [field, n] of this.takeFields()) fields.set(field, (fields.get(field) ?? 0) + n);
    this.pendingHour = hourOf(Date.now());
    this.pendingHourStart = Date.parse(`${this.pendingHour}:00:00.000Z`);
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

  /** In a worker of --workers: every count not yet handed on, by hour, emptied (the primary process adds them into Redis). */
  drain(): [string, [string, number][]][] {
    this.rollHour();
    const out: [string, [string, number][]][] = [...this.closed].map(([hour, fields]) => [hour, [...fields]]);
    this.closed = new Map();
    return out;
  }

  /** In the primary process of --workers: a worker's counts, added to this node's (checked: they come over IPC). */
  absorb(hours: readonly [string, readonly [string, number][]][]): void {
    for (const [hour, fields] of hours) {
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(hour)) continue;
      let into = this.closed.get(hour);
      if (into === undefined) this.closed.set(hour, (into = new Map()));
      for (const [field, n] of fields) {
        if (!Number.isSafeInteger(n) || n <= 0) continue;
        into.set(field, (into.get(field) ?? 0) + n);
        if (field === `node|${this.node}|queries`) this.queries += n;
        else if (field === `node|${this.node}|blocked`) this.blocked += n;
      }
    }
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
      // Taken out while written: counts added meanwhile (the hour turning, a worker's counts) go to a new map.
      this.closed.delete(hour);
      if (fields.size === 0) continue;
      const key = KEYS.hour(hour);
      try {
        // One transaction: a cut connection adds all of these or none.
        await link.transaction([...[...fields].map(([field, n]) => ['HINCRBY', key, field, String(n)]), ['EXPIRE', key, String(HOURS_KEPT * 3600)]]);
        this.flushes++;
      } catch {
        // Redis is away: these counts stay for next time, with what came meanwhile.
        for (const [field, n] of this.closed.get(hour) ?? []) fields.set(field, (fields.get(field) ?? 0) + n);
        this.closed.set(hour, fields);
        return;
      }
    }
  }
}

export async function writeHeartbeat(link: RedisLink, beat: Heartbeat): Promise<void> {
  await link.send(['HSET', KEYS.nodes, beat.node, JSON.stringify(beat)]);
}
