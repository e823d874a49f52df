// Search over single stored blocked attempts, newest first, a page at a time: the console's
// search and client page, GET /api/attempts. With a client or a name, the roll-ups say
// which days and hours hold its attempts and only those spans of raw rows are read, back
// from the end of the range (walkSpans): no index over the raw rows is needed (they cost
// 35 bytes per attempt, a third of the database).
import type { Db } from './schema.js';
import { BLOCKED, DAY_MS, HOUR_MS, ID_PER_MS, hasFoldedRows, rollupTimes } from './schema.js';
import { qtypeName } from '../../wire/constants.js';

export interface SearchQuery {
  /** ms, inclusive. */
  since: number;
  /** ms, exclusive. */
  until: number;
  /** An address, or a client name (case-insensitive). */
  client?: string;
  /** Part of the name asked (case-insensitive): "whatsapp" finds web.whatsapp.com. */
  name?: string;
  bundle?: string;
  /** Rows per page. */
  limit: number;
  /** The `next` of the page before: rows older than it. */
  before?: number;
}

/** One stored blocked attempt. */
export interface Attempt {
  /** ISO time (UTC). */
  time: string;
  client: string;
  /** The client's name when one was known (DHCP lease, hosts file), else null. */
  name: string | null;
  group: string;
  qname: string;
  qtype: string;
  /** null: blocked without a rule (not a list's doing). */
  bundle: string | null;
  /** file:line of the rule. */
  rule: string | null;
  node: string;
  /** Identical attempts (same client, name, type, group, bundle, rule) in this second, stored as one row: 1 or more. */
  count: number;
}

/** The stable JSON shape of GET /api/attempts. */
export interface AttemptsPage {
  since: string;
  until: string;
  rows: Attempt[];
  /** Pass as `before` for the next (older) page; null when this is the last one. */
  next: string | null;
}

export const SEARCH_LIMIT_DEFAULT = 50;
export const SEARCH_LIMIT_MAX = 500;

/**
 * A filter with at most this many ids is read through its index, one walk per id, merged;
 * past it (a short name part matching thousands of names) the rows are read in time order
 * and tested against the set.
 */
const WALKS_MAX = 32;

interface RawRow {
  id: number;
  client: number;
  domain: number;
  qtype: number;
  grp: number;
  bundle: number | null;
  rule_file: number | null;
  rule_line: number | null;
  node: number;
  count: number;
}

/** The page of blocked attempts matching `q`, newest first. Reads only: `db` may be opened read-only. */
export function searchAttempts(db: Db, q: SearchQuery): AttemptsPage {
  // A database last written by an older server has one row per attempt and no count column.
  const columns = `id, client, domain, qtype, grp, bundle, rule_file, rule_line, node, ${hasFoldedRows(db) ? 'count' : '1 AS count'}`;
  const read = db.transaction((): { rows: Attempt[]; next: string | null } => {
    const filters: { column: 'client' | 'domain' | 'bundle'; ids: number[] }[] = [];
    if (q.client !== undefined) {
      const ids = (db.prepare('SELECT id FROM clients WHERE address = ? OR lower(name) = lower(?)').all(q.client, q.client) as { id: number }[]).map((r) => r.id);
      filters.push({ column: 'client', ids });
    }
    if (q.name !== undefined) {
      const ids = (db.prepare('SELECT id FROM domains WHERE instr(qname, ?) > 0').all(q.name.toLowerCase()) as { id: number }[]).map((r) => r.id);
      filters.push({ column: 'domain', ids });
    }
    if (q.bundle !== undefined) {
      const ids = (db.prepare('SELECT id FROM labels WHERE text = ?').all(q.bundle) as { id: number }[]).map((r) => r.id);
      filters.push({ column: 'bundle', ids });
    }
    if (filters.some((f) => f.ids.length === 0)) return { rows: [], next: null };
    const from = q.since * ID_PER_MS;
    const to = Math.min(q.until * ID_PER_MS, q.before ?? Infinity);
    if (from >= to) return { rows: [], next: null };
    const want = q.limit + 1;
    // A client, else a name, drives: its index is walked back from the end of the range
    // (one walk per id, merged); the other filters are tested on the rows it reads. Without
    // one (a bundle alone, or a name part matching many names) the rows are read back in time.
    const driver = filters.filter((f) => f.column !== 'bundle' && f.ids.length <= WALKS_MAX).sort((a, b) => order(a.column) - order(b.column))[0];
    const others = filters.filter((f) => f !== driver).map((f) => ` AND ${f.column} IN (${f.ids.join(',')})`).join('');
    let raw: RawRow[];
    const has = (type: 'index' | 'table', name: string): boolean => db.prepare('SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?').get(type, name) !== undefined;
    if (driver === undefined) {
      raw = db.prepare(`SELECT ${columns} FROM queries NOT INDEXED WHERE id >= ? AND id < ? AND verdict = ${BLOCKED}${others} ORDER BY id DESC LIMIT ?`)
        .all(from, to, want) as RawRow[];
    } else if (has('index', `queries_${driver.column}`)) {
      // Schema 2 (a database last written by an older server): an index per client and per name.
      const walk = db.prepare(`SELECT ${columns} FROM queries INDEXED BY queries_${driver.column} ` +
        `WHERE ${driver.column} = ? AND id >= ? AND id < ? AND verdict = ${BLOCKED}${others} ORDER BY id DESC LIMIT ?`);
      raw = driver.ids.flatMap((id) => walk.all(id, from, to, want) as RawRow[]);
      if (driver.ids.length > 1) raw.sort((a, b) => b.id - a.id);
    } else if (has('table', driver.column === 'client' ? 'daily' : 'daily_domains')) {
      raw = walkSpans(db, driver.column as 'client' | 'domain', driver.ids, `${columns} FROM queries WHERE id >= ? AND id < ? AND verdict = ${BLOCKED} ` +
        `AND ${driver.column} IN (${driver.ids.join(',')})${others} ORDER BY id DESC LIMIT ?`, from, to, want);
    } else {
      raw = db.prepare(`SELECT ${columns} FROM queries WHERE id >= ? AND id < ? AND verdict = ${BLOCKED} AND ${driver.column} IN (${driver.ids.join(',')})${others} ORDER BY id DESC LIMIT ?`)
        .all(from, to, want) as RawRow[];
    }
    const more = raw.length > q.limit;
    const page = raw.slice(0, q.limit);
    return { rows: describe(db, page), next: more ? String(page[page.length - 1]!.id) : null };
  });
  const { rows, next } = read();
  return { since: new Date(q.since).toISOString(), until: new Date(q.until).toISOString(), rows, next };
}

/**
 * The rows of a client or a name, newest first, without an index over the raw rows (schema
 * 3): the roll-ups say where they are. Day by day back from the end of the range, the daily
 * roll-up (per client) or the daily per name gives the first and last ms of that day's
 * attempts (one primary-key lookup); for a client, the hourly roll-up narrows it to the
 * hours that hold some. Only the raw rows between that first and last are read, in key
 * order: for a rare client or name a few short ranges, for a frequent one the newest span
 * already fills the page. `select` reads rows in [?, ?) newest first, LIMIT ?.
 */
function walkSpans(db: Db, column: 'client' | 'domain', ids: number[], select: string, from: number, to: number, want: number): RawRow[] {
  const list = ids.join(',');
  const d = rollupTimes(db, column === 'client' ? 'daily' : 'daily_domains');
  const h = rollupTimes(db, 'hourly');
  const daySpan = db.prepare(column === 'client'
    ? `SELECT min(${d.first}) AS f, max(${d.last}) AS l FROM daily WHERE day = ? AND client IN (${list}) AND verdict = ${BLOCKED}`
    : `SELECT min(${d.first}) AS f, max(${d.last}) AS l FROM daily_domains WHERE day = ? AND domain IN (${list})`);
  const hourSpan = db.prepare(`SELECT min(${h.first}) AS f, max(${h.last}) AS l FROM hourly WHERE hour = ? AND client IN (${list}) AND verdict = ${BLOCKED}`);
  const rows = db.prepare(`SELECT ${select}`);
  const raw: RawRow[] = [];
  const read = (f: number, l: number): void => {
    const lo = Math.max(from, f * ID_PER_MS);
    const hi = Math.min(to, (l + 1) * ID_PER_MS);
    if (lo < hi) for (const r of rows.all(lo, hi, want - raw.length) as RawRow[]) raw.push(r);
  };
  const firstDay = Math.floor(from / ID_PER_MS / DAY_MS);
  for (let day = Math.floor((to - 1) / ID_PER_MS / DAY_MS); day >= firstDay && raw.length < want; day--) {
    const span = daySpan.get(day) as { f: number | null; l: number | null };
    if (span.f === null || span.l === null) continue;
    if (column === 'domain') {
      read(span.f, span.l);
      continue;
    }
    for (let hour = Math.floor(span.l / HOUR_MS); hour >= Math.floor(span.f / HOUR_MS) && raw.length < want; hour--) {
      const span = hourSpan.get(hour) as { f: number | null; l: number | null };
      if (span.f !== null && span.l !== null) read(span.f, span.l);
    }
  }
  return raw;
}

/** Which filter drives when both could: client, then name. */
function order(column: 'client' | 'domain' | 'bundle'): number {
  return column === 'client' ? 0 : 1;
}

/** The page's ids in words. */
function describe(db: Db, page: RawRow[]): Attempt[] {
  const lookup = <T>(sql: string, ids: Iterable<number>): Map<number, T> => {
    const list = [...new Set(ids)];
    const found = new Map<number, T>();
    if (list.length === 0) return found;
    for (const r of db.prepare(`${sql} WHERE id IN (${list.join(',')})`).all() as (T & { id: number })[]) found.set(r.id, r);
    return found;
  };
  const clients = lookup<{ address: string; name: string }>('SELECT id, address, name FROM clients', page.map((r) => r.client));
  const domains = lookup<{ qname: string }>('SELECT id, qname FROM domains', page.map((r) => r.domain));
  const labelIds = page.flatMap((r) => [r.grp, r.node, ...(r.bundle === null ? [] : [r.bundle]), ...(r.rule_file === null ? [] : [r.rule_file])]);
  const labels = lookup<{ text: string }>('SELECT id, text FROM labels', labelIds);
  const label = (id: number | null): string | null => (id === null ? null : labels.get(id)?.text ?? null);
  return page.map((r) => {
    const c = clients.get(r.client);
    const file = label(r.rule_file);
    return {
      time: new Date(Math.floor(r.id / ID_PER_MS)).toISOString(),
      client: c?.address ?? '',
      name: c?.name ? c.name : null,
      group: label(r.grp) ?? 'default',
      qname: domains.get(r.domain)?.qname ?? '',
      qtype: qtypeName(r.qtype),
      bundle: label(r.bundle) || null,
      rule: file === null ? null : `${file}:${r.rule_line ?? 0}`,
      node: label(r.node) ?? '',
      count: r.count,
    };
  });
}
