// The parameters of a report, as `sinkhole report` flags and GET /api/report query
// parameters take them: --since 7d|2026-11-01|ISO, --until ..., --by, --client, --bundle;
// and those of a search over single attempts (GET /api/attempts).
import { REPORT_BY, type ReportBy, type ReportQuery } from './report.js';
import { SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX, type SearchQuery } from './search.js';

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * A point in time: `7d` (7 days before now; also m, h, w), `now`, a date (local midnight;
 * for --until, the end of that day, so `--until 2026-11-30` includes the 30th), or an ISO
 * date and time.
 */
export function parseTime(text: string, now: number, endOfDay: boolean): number | null {
  const ago = /^(\d+)([mhdw])$/.exec(text);
  if (ago) return now - Number(ago[1]) * UNIT_MS[ago[2]!]!;
  if (text === 'now') return now;
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (date) {
    const d = new Date(Number(date[1]), Number(date[2]) - 1, Number(date[3]) + (endOfDay ? 1 : 0));
    return Number.isNaN(d.getTime()) || Number(date[2]) > 12 || Number(date[3]) > 31 ? null : d.getTime();
  }
  if (/^\d{4}-\d{2}-\d{2}T/.test(text)) {
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

/** Reads a report's parameters; `get` returns a parameter's value or undefined. Errors are one line naming the parameter. */
export function parseReportArgs(get: (name: string) => string | undefined, now: number, prefix = '--'): ReportQuery | { error: string } {
  const sinceText = get('since') ?? '7d';
  const untilText = get('until') ?? 'now';
  const since = parseTime(sinceText, now, false);
  if (since === null) return { error: `${prefix}since: "${sinceText}" is not a time: give 7d, 12h, 30m, 2w, a date (2026-11-01) or an ISO time` };
  const until = parseTime(untilText, now, true);
  if (until === null) return { error: `${prefix}until: "${untilText}" is not a time: give now, 1d, a date (2026-11-30) or an ISO time` };
  if (until <= since) return { error: `${prefix}until (${new Date(until).toISOString()}) must be after ${prefix}since (${new Date(since).toISOString()})` };
  const by = get('by') ?? 'client';
  if (!(REPORT_BY as readonly string[]).includes(by)) return { error: `${prefix}by: "${by}" is not one of ${REPORT_BY.join(', ')}` };
  const q: ReportQuery = { since, until, by: by as ReportBy };
  const client = get('client');
  if (client !== undefined && client !== '') q.client = client;
  const bundle = get('bundle');
  if (bundle !== undefined && bundle !== '') q.bundle = bundle;
  return q;
}

/** Reads a search's parameters (GET /api/attempts): since, until, client, name, bundle, limit, before. */
export function parseSearchArgs(get: (name: string) => string | undefined, now: number): SearchQuery | { error: string } {
  const sinceText = get('since') || '7d';
  const untilText = get('until') || 'now';
  const since = parseTime(sinceText, now, false);
  if (since === null) return { error: `since: "${sinceText}" is not a time: give 7d, 12h, 30m, 2w, a date (2026-11-01) or an ISO time` };
  const until = parseTime(untilText, now, true);
  if (until === null) return { error: `until: "${untilText}" is not a time: give now, 1d, a date (2026-11-30) or an ISO time` };
  if (until <= since) return { error: `until (${new Date(until).toISOString()}) must be after since (${new Date(since).toISOString()})` };
  const limitText = get('limit') || String(SEARCH_LIMIT_DEFAULT);
  const limit = /^\d{1,4}$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= SEARCH_LIMIT_MAX)) return { error: `limit: "${limitText}" is not a number from 1 to ${SEARCH_LIMIT_MAX}` };
  const q: SearchQuery = { since, until, limit };
  const beforeText = get('before');
  if (beforeText !== undefined && beforeText !== '') {
    if (!/^\d{1,16}$/.test(beforeText)) return { error: `before: "${beforeText}" is not the "next" of an earlier page` };
    q.before = Number(beforeText);
  }
  for (const key of ['client', 'name', 'bundle'] as const) {
    const value = get(key)?.trim();
    if (value !== undefined && value !== '') q[key] = value;
  }
  return q;
}
