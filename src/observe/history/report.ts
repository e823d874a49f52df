// Reports over the history database: blocked attempts grouped by client, bundle, domain,
// group, day or hour in a time range. Whole days come from the daily roll-ups, whole hours
// from the hourly ones, and only the partial hours at the ends of the range from raw rows:
// a 90-day report never scans the raw rows of 90 days (except by domain for one client).
import type { Db } from './schema.js';
import { BLOCKED, DAY_MS, HOUR_MS, ID_PER_MS, rollupTimes, rowCountSql } from './schema.js';

export const REPORT_BY = ['client', 'bundle', 'domain', 'group', 'day', 'hour'] as const;
export type ReportBy = (typeof REPORT_BY)[number];

export interface ReportQuery {
  /** ms, inclusive. */
  since: number;
  /** ms, exclusive. */
  until: number;
  by: ReportBy;
  /** An address, or a client name (case-insensitive). */
  client?: string;
  bundle?: string;
}

export interface ReportRow {
  key: string;
  /** The client's name for `by: client` (null when none is known); null for the other groupings. */
  name: string | null;
  count: number;
  first: string;
  last: string;
}

/** The stable JSON shape of `sinkhole report --format json` and GET /api/report. */
export interface Report {
  since: string;
  until: string;
  by: ReportBy;
  rows: ReportRow[];
}

/** What the renderers need: a report of this database or of the fleet's counts (src/fleet/report.ts, which also groups by site and node). */
export type ReportLike = Omit<Report, 'by'> & { by: string };

interface Part {
  k: number;
  n: number;
  f: number;
  l: number;
}

/** The SQL column each grouping groups by, in the roll-ups and in the raw rows. */
const ROLLUP_KEY: Record<Exclude<ReportBy, 'domain'>, string> = { client: 'client', bundle: 'bundle', group: 'grp', day: 'hour', hour: 'hour' };
const RAW_KEY: Record<ReportBy, string> = {
  client: 'client', bundle: 'coalesce(bundle, -1)', group: 'grp', domain: 'domain', day: `id / ${HOUR_MS * ID_PER_MS}`, hour: `id / ${HOUR_MS * ID_PER_MS}`,
};

/** Blocked attempts in [since, until) grouped by `by`. Reads only: `db` may be opened read-only. */
export function report(db: Db, q: ReportQuery): Report {
  const read = db.transaction((): ReportRow[] => {
    const filters: string[] = [];
    const params: number[] = [];
    if (q.client !== undefined) {
      const ids = (db.prepare('SELECT id FROM clients WHERE address = ? OR lower(name) = lower(?)').all(q.client, q.client) as { id: number }[]).map((r) => r.id);
      if (ids.length === 0) return [];
      filters.push(`client IN (${ids.join(',')})`);
    }
    if (q.bundle !== undefined) {
      const id = (db.prepare('SELECT id FROM labels WHERE text = ?').get(q.bundle) as { id: number } | undefined)?.id;
      if (id === undefined) return [];
      filters.push('bundle = ?');
      params.push(id);
    }
    const where = filters.map((f) => ` AND ${f}`).join('');
    const parts: Part[] = [];
    const dayOrHour = q.by === 'day' || q.by === 'hour';
    // A raw row may stand for several attempts (see queries.count).
    const folded = rowCountSql(db);
    const raw = (from: number, to: number): void => {
      if (from >= to) return;
      const rows = db.prepare(`SELECT ${RAW_KEY[q.by]} AS k, sum(${folded.count}) AS n, min(id) / ${ID_PER_MS} AS f, max(${folded.lastMs}) AS l ` +
        `FROM queries WHERE id >= ? AND id < ? AND verdict = ${BLOCKED}${where} GROUP BY k`).all(from * ID_PER_MS, to * ID_PER_MS, ...params) as Part[];
      for (const r of rows) parts.push({ ...r, k: dayOrHour ? r.k * HOUR_MS : r.k });
    };
    const hourly = (from: number, to: number): void => {
      if (from >= to) return;
      const t = rollupTimes(db, 'hourly');
      const rows = db.prepare(`SELECT ${ROLLUP_KEY[q.by as Exclude<ReportBy, 'domain'>]} AS k, sum(count) AS n, min(${t.first}) AS f, max(${t.last}) AS l ` +
        `FROM hourly WHERE hour >= ? AND hour < ? AND verdict = ${BLOCKED}${where} GROUP BY k`).all(from, to, ...params) as Part[];
      for (const r of rows) parts.push({ ...r, k: dayOrHour ? r.k * HOUR_MS : r.k });
    };
    const daily = (from: number, to: number): void => {
      if (from >= to) return;
      const d = rollupTimes(db, 'daily');
      const dd = rollupTimes(db, 'daily_domains');
      const rows = q.by === 'domain'
        ? db.prepare(`SELECT domain AS k, sum(count) AS n, min(${dd.first}) AS f, max(${dd.last}) AS l FROM daily_domains WHERE day >= ? AND day < ?${where} GROUP BY k`)
          .all(from, to, ...params) as Part[]
        : db.prepare(`SELECT ${ROLLUP_KEY[q.by as Exclude<ReportBy, 'domain'>]} AS k, sum(count) AS n, min(${d.first}) AS f, max(${d.last}) AS l ` +
          `FROM daily WHERE day >= ? AND day < ? AND verdict = ${BLOCKED}${where} GROUP BY k`).all(from, to, ...params) as Part[];
      parts.push(...rows);
    };
    // The range in pieces: whole UTC days from the daily tables (not for day and hour, which
    // are local time), whole hours from the hourly one, the ends from raw rows. By domain
    // there is no hourly table: the days' ends come from raw rows; with a client, all of it.
    const firstDay = Math.ceil(q.since / DAY_MS);
    const endDay = Math.floor(q.until / DAY_MS);
    const useDaily = !dayOrHour && !(q.by === 'domain' && q.client !== undefined) && firstDay < endDay;
    if (q.by === 'domain') {
      if (useDaily) {
        raw(q.since, firstDay * DAY_MS);
        daily(firstDay, endDay);
        raw(endDay * DAY_MS, q.until);
      } else raw(q.since, q.until);
    } else {
      const firstHour = Math.ceil(q.since / HOUR_MS);
      const endHour = Math.floor(q.until / HOUR_MS);
      if (firstHour >= endHour) raw(q.since, q.until);
      else {
        raw(q.since, firstHour * HOUR_MS);
        if (useDaily) {
          hourly(firstHour, firstDay * 24);
          daily(firstDay, endDay);
          hourly(endDay * 24, endHour);
        } else hourly(firstHour, endHour);
        raw(endHour * HOUR_MS, q.until);
      }
    }
    return merge(db, q.by, parts);
  });
  return { since: new Date(q.since).toISOString(), until: new Date(q.until).toISOString(), by: q.by, rows: read() };
}

/** Turns ids into keys, and sums the parts that share a key. */
function merge(db: Db, by: ReportBy, parts: Part[]): ReportRow[] {
  const text = keyText(db, by, parts);
  const sums = new Map<string, { name: string | null; nameAt: number; n: number; f: number; l: number }>();
  for (const p of parts) {
    const { key, name } = text(p.k);
    const s = sums.get(key);
    if (s === undefined) sums.set(key, { name, nameAt: name === null ? -Infinity : p.l, n: p.n, f: p.f, l: p.l });
    else {
      s.n += p.n;
      s.f = Math.min(s.f, p.f);
      s.l = Math.max(s.l, p.l);
      // A client known under several names is shown with the latest.
      if (name !== null && p.l > s.nameAt) {
        s.name = name;
        s.nameAt = p.l;
      }
    }
  }
  const rows = [...sums].map(([key, s]) => ({ key, name: s.name, count: s.n, first: new Date(s.f).toISOString(), last: new Date(s.l).toISOString() }));
  if (by === 'day' || by === 'hour') rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  else rows.sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return rows;
}

function keyText(db: Db, by: ReportBy, parts: Part[]): (k: number) => { key: string; name: string | null } {
  if (by === 'day') return (k) => ({ key: localDay(k), name: null });
  if (by === 'hour') return (k) => ({ key: localHour(k), name: null });
  const ids = [...new Set(parts.map((p) => p.k))].filter((k) => k >= 0);
  const table = by === 'client' ? 'clients' : by === 'domain' ? 'domains' : 'labels';
  const column = by === 'client' ? "address AS t, name AS name" : by === 'domain' ? 'qname AS t, NULL AS name' : 'text AS t, NULL AS name';
  const found = new Map<number, { t: string; name: string | null }>();
  // In slices: SQLite limits the number of values in one statement.
  for (let i = 0; i < ids.length; i += 500) {
    const slice = ids.slice(i, i + 500);
    for (const r of db.prepare(`SELECT id, ${column} FROM ${table} WHERE id IN (${slice.join(',')})`).all() as { id: number; t: string; name: string | null }[]) found.set(r.id, r);
  }
  return (k) => {
    const r = found.get(k);
    return { key: r?.t ?? '', name: by === 'client' ? (r?.name ? r.name : null) : null };
  };
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** YYYY-MM-DD in local time. */
export function localDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** YYYY-MM-DDTHH:00:00+HH:MM: the hour in local time, with its offset, so it is unambiguous. */
export function localHour(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  return `${localDay(ms)}T${pad(d.getHours())}:00:00${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

/** Local date and time for the table format: YYYY-MM-DD HH:MM:SS. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  return `${localDay(d.getTime())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `key,name,count,first,last`, one row per key; name empty when null; times ISO (UTC). */
export function reportCsv(r: ReportLike): string {
  return ['key,name,count,first,last', ...r.rows.map((row) => [row.key, row.name ?? '', String(row.count), row.first, row.last].map(csvField).join(','))].join('\n') + '\n';
}

/** A table for people: local times with date. */
export function reportTable(r: ReportLike): string {
  const head = `blocked attempts by ${r.by}, ${localTime(r.since)} to ${localTime(r.until)} (local time)`;
  if (r.rows.length === 0) return `${head}\n  (none)\n`;
  // Only clients have names: the column is left out for the other groupings.
  const named = r.by === 'client';
  const cells = [[r.by.toUpperCase(), ...(named ? ['NAME'] : []), 'COUNT', 'FIRST', 'LAST'],
    ...r.rows.map((row) => [row.key === '' ? '(none)' : row.key, ...(named ? [row.name ?? '-'] : []), String(row.count), localTime(row.first), localTime(row.last)])];
  const countColumn = named ? 2 : 1;
  const width = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)));
  const lines = cells.map((row) => row.map((cell, c) => (c === countColumn ? cell.padStart(width[c]!) : cell.padEnd(width[c]!))).join('  ').trimEnd());
  return `${head}\n${lines.join('\n')}\n`;
}
