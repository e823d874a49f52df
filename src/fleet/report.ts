// `sinkhole report --fleet`: blocked attempts from the fleet's hourly counts in Redis (every
// node adds its own, figures.ts), in the shapes of `sinkhole report` ({since, until, by,
// rows: [{key, name, count, first, last}]}). The counts are per hour, so first and last
// are hour boundaries (clamped to the range), and only what the roll-ups hold can be asked:
// per client, bundle, site or node, per hour or day; not per domain or group (those live in
// each node's own history database).
import { localDay, localHour, type ReportRow } from '../observe/history/report.js';
import { HOURS_KEPT } from './figures.js';
import { hourOf, KEYS } from './keys.js';
import type { RedisLink } from './link.js';

export const FLEET_REPORT_BY = ['client', 'bundle', 'site', 'node', 'day', 'hour'] as const;
export type FleetReportBy = (typeof FLEET_REPORT_BY)[number];

export interface FleetReportQuery {
  since: number;
  until: number;
  by: FleetReportBy;
  /** An address (any site) or SITE/ADDRESS. */
  client?: string;
  bundle?: string;
}

export interface FleetReport {
  since: string;
  until: string;
  by: FleetReportBy;
  rows: ReportRow[];
}

const HOUR_MS = 3_600_000;

/** Why the fleet's roll-ups cannot answer this question, or null when they can. */
export function fleetReportProblem(by: string, client: string | undefined, bundle: string | undefined): string | null {
  if (by === 'domain' || by === 'group') return `--by ${by} is not in the fleet's hourly counts (they hold client, bundle, site, node, hour); run "sinkhole report --by ${by}" on each node`;
  if (!(FLEET_REPORT_BY as readonly string[]).includes(by)) return `--by "${by}" is not one of ${FLEET_REPORT_BY.join(', ')}`;
  if (client !== undefined && bundle !== undefined) return 'the fleet\'s counts do not cross clients with bundles: give --client or --bundle, not both';
  if (client !== undefined && (by === 'bundle' || by === 'node')) return `the fleet's counts per ${by} are not kept per client: drop --client, or use --by hour, day, site`;
  if (bundle !== undefined && (by === 'client' || by === 'node')) return `the fleet's counts per ${by} are not kept per bundle: drop --bundle, or use --by hour, day, site`;
  return null;
}

/** Reads the hours of [since, until) (at most the 90 days kept) and adds up the blocked counts. */
export async function fleetReport(link: RedisLink, q: FleetReportQuery, now = Date.now()): Promise<FleetReport> {
  const problem = fleetReportProblem(q.by, q.client, q.bundle);
  if (problem !== null) throw new Error(problem);
  const until = Math.min(q.until, now);
  const first = Math.max(Math.floor(q.since / HOUR_MS), Math.floor(now / HOUR_MS) - HOURS_KEPT + 1);
  const hours: number[] = [];
  for (let h = first; h * HOUR_MS < until; h++) hours.push(h);
  const hashes = await Promise.all(hours.map((h) => link.send<Record<string, string> | string[]>(['HGETALL', KEYS.hour(hourOf(h * HOUR_MS))])));
  const sums = new Map<string, { n: number; f: number; l: number }>();
  const add = (key: string, n: number, h: number): void => {
    if (n <= 0) return;
    const f = Math.max(h * HOUR_MS, q.since);
    const l = Math.min((h + 1) * HOUR_MS, until);
    const s = sums.get(key);
    if (s === undefined) sums.set(key, { n, f, l });
    else {
      s.n += n;
      s.f = Math.min(s.f, f);
      s.l = Math.max(s.l, l);
    }
  };
  for (const [i, hash] of hashes.entries()) {
    const h = hours[i]!;
    const timeKey = q.by === 'hour' ? localHour(h * HOUR_MS) : q.by === 'day' ? localDay(h * HOUR_MS) : null;
    for (const [field, value] of Array.isArray(hash) ? pairs(hash) : Object.entries(hash)) {
      const parts = field.split('|');
      if (parts[parts.length - 1] !== 'blocked') continue;
      const n = Number(value);
      if (!Number.isSafeInteger(n)) continue;
      const [kind, a, b] = parts;
      // One kind of counter per question, so that nothing is counted twice.
      if (q.client !== undefined) {
        if (kind !== 'client' || parts.length !== 4 || !(b === q.client || `${a}/${b}` === q.client)) continue;
        add(timeKey ?? (q.by === 'site' ? a! : `${a}/${b}`), n, h);
      } else if (q.bundle !== undefined || q.by === 'bundle') {
        if (kind !== 'bundle' || parts.length !== 4 || (q.bundle !== undefined && b !== q.bundle)) continue;
        add(timeKey ?? (q.by === 'site' ? a! : b!), n, h);
      } else if (q.by === 'client') {
        if (kind === 'client' && parts.length === 4) add(`${a}/${b}`, n, h);
      } else if (q.by === 'node') {
        if (kind === 'node' && parts.length === 3) add(a!, n, h);
      } else if (kind === 'site' && parts.length === 3) {
        add(timeKey ?? a!, n, h);
      }
    }
  }
  const rows: ReportRow[] = [...sums].map(([key, s]) => ({ key, name: null, count: s.n, first: new Date(s.f).toISOString(), last: new Date(s.l).toISOString() }));
  if (q.by === 'day' || q.by === 'hour') rows.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  else rows.sort((x, y) => y.count - x.count || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  return { since: new Date(q.since).toISOString(), until: new Date(q.until).toISOString(), by: q.by, rows };
}

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}
