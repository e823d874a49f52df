// Schedules: named sets of weekly time windows in the server's local time zone (TZ is
// honoured, as Node reads it). `schedule work mon-fri 08:00-17:30` is one window on each of
// five days; a window whose end is not after its start runs past midnight into the next
// day (`daily 22:00-06:00`); several lines with one name add windows to one schedule.
//
// A schedule is a sorted list of [start, end) intervals in minutes of the week (Monday
// 00:00 = 0). Nothing here runs per query: the group policy asks isActive() and
// nextBoundary() when a boundary passes, and keeps the answers in its tables.
import { ConfigError } from '../../config/errors.js';

export const MINUTES_PER_DAY = 1440;
export const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY;
export const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** One `schedule` line, parsed. */
export interface ScheduleLine {
  name: string;
  /** Bit d set: the window starts on day d (0 = Monday). */
  days: number;
  /** Minutes after midnight; end 1440 is `24:00`. end <= start: the window ends the next day. */
  start: number;
  end: number;
  where: string;
  text: string;
}

function dayIndex(word: string, where: string, value: string): number {
  const d = DAY_NAMES.indexOf(word.slice(0, 3) as (typeof DAY_NAMES)[number]);
  const full = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
  if (d < 0 || (word.length > 3 && full[d] !== word)) {
    throw new ConfigError(`${where}: "${word}" in "${value}" is not a day; use mon..sun, ranges (mon-fri), lists (mon,wed) or daily`);
  }
  return d;
}

/** `mon-fri`, `mon,wed,fri`, `sat-sun`, `fri-mon` (wraps), `daily`, `weekdays`, `weekends` -> day bits. */
export function parseDays(text: string, where: string): number {
  const value = text.toLowerCase();
  if (value === 'daily' || value === 'everyday' || value === 'mon-sun') return 0x7f;
  if (value === 'weekdays') return 0x1f;
  if (value === 'weekends') return 0x60;
  let bits = 0;
  for (const part of value.split(',')) {
    if (part === '') throw new ConfigError(`${where}: empty day in "${text}"; write e.g. mon,wed,fri`);
    const dash = part.indexOf('-');
    if (dash < 0) {
      bits |= 1 << dayIndex(part, where, text);
      continue;
    }
    const from = dayIndex(part.slice(0, dash), where, text);
    const to = dayIndex(part.slice(dash + 1), where, text);
    for (let d = from; ; d = (d + 1) % 7) {
      bits |= 1 << d;
      if (d === to) break;
    }
  }
  return bits;
}

/** `08:00` -> 480; `24:00` only where `allow24`. */
export function parseClock(text: string, where: string, allow24: boolean): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text);
  const h = m ? Number(m[1]) : NaN;
  const min = m ? Number(m[2]) : NaN;
  if (!m || min > 59 || h > 24 || (h === 24 && (min !== 0 || !allow24))) {
    throw new ConfigError(`${where}: "${text}" is not a time of day; write HH:MM from 00:00 to 23:59 (24:00 as an end)`);
  }
  return h * 60 + min;
}

/** The value of a `schedule` line: `NAME DAYS HH:MM-HH:MM`. */
export function parseScheduleLine(value: string, where: string): ScheduleLine {
  const words = value.trim().split(/\s+/);
  if (words.length !== 3) {
    throw new ConfigError(`${where}: expected "schedule NAME DAYS HH:MM-HH:MM" (e.g. schedule work mon-fri 08:00-17:30), found "schedule ${value.trim()}"`);
  }
  const [rawName, days, span] = words as [string, string, string];
  const name = rawName.toLowerCase();
  if (!NAME.test(name)) throw new ConfigError(`${where}: "${rawName}" is not a schedule name; use letters, digits, - and _`);
  const times = span.split('-');
  if (times.length !== 2) throw new ConfigError(`${where}: "${span}" is not a time window; write HH:MM-HH:MM, e.g. 08:00-17:30`);
  const start = parseClock(times[0]!, where, false);
  const end = parseClock(times[1]!, where, true);
  if (start === end) throw new ConfigError(`${where}: the window ${span} is empty (it starts when it ends); give two different times`);
  return { name, days: parseDays(days, where), start, end, where, text: `${days} ${span}` };
}

interface Interval {
  start: number;
  end: number;
  line: ScheduleLine;
}

export class Schedule {
  /** Sorted, non-overlapping [start, end) minute-of-week intervals; a window over Sunday midnight is split in two. */
  private readonly intervals: { start: number; end: number }[];
  /** Every minute of the week where the schedule may switch on or off, sorted. */
  private readonly edges: number[];

  constructor(readonly name: string, readonly lines: readonly ScheduleLine[]) {
    const all: Interval[] = [];
    for (const line of lines) {
      const length = line.end > line.start ? line.end - line.start : MINUTES_PER_DAY - line.start + line.end;
      for (let d = 0; d < 7; d++) {
        if ((line.days & (1 << d)) === 0) continue;
        const start = d * MINUTES_PER_DAY + line.start;
        const end = start + length;
        if (end <= MINUTES_PER_WEEK) all.push({ start, end, line });
        else {
          all.push({ start, end: MINUTES_PER_WEEK, line });
          all.push({ start: 0, end: end - MINUTES_PER_WEEK, line });
        }
      }
    }
    all.sort((a, b) => a.start - b.start);
    for (let i = 1; i < all.length; i++) {
      const a = all[i - 1]!;
      const b = all[i]!;
      if (b.start < a.end) {
        const [first, second] = lines.indexOf(a.line) <= lines.indexOf(b.line) ? [a.line, b.line] : [b.line, a.line];
        const at = `${DAY_NAMES[Math.floor(b.start / MINUTES_PER_DAY)]} ${clockText(b.start % MINUTES_PER_DAY)}`;
        throw new ConfigError(first === second
          ? `${first.where}: the windows of "${first.text}" overlap themselves (at ${at}); shorten the window`
          : `${second.where}: schedule ${name} window "${second.text}" overlaps "${first.text}" (${first.where}) at ${at}; make the windows meet without overlapping`);
      }
    }
    this.intervals = all.map(({ start, end }) => ({ start, end }));
    const edges = new Set<number>();
    for (const i of this.intervals) {
      edges.add(i.start);
      edges.add(i.end % MINUTES_PER_WEEK);
    }
    this.edges = [...edges].sort((a, b) => a - b);
  }

  /** Whether `now` (ms since the epoch) falls in one of the windows, in local time. */
  isActive(now: number): boolean {
    const m = minuteOfWeek(new Date(now));
    for (const i of this.intervals) if (m >= i.start && m < i.end) return true;
    return false;
  }

  /**
   * The first moment after `now` at which the schedule may switch (a window's start or
   * end), in ms since the epoch; local dates are built by the Date constructor, so days of
   * 23 or 25 hours (daylight saving) land at the right wall-clock minute.
   */
  nextBoundary(now: number): number {
    const date = new Date(now);
    const m = minuteOfWeek(date);
    let delta = MINUTES_PER_WEEK;
    for (const e of this.edges) {
      const d = (e - m + MINUTES_PER_WEEK) % MINUTES_PER_WEEK || MINUTES_PER_WEEK;
      if (d < delta) delta = d;
    }
    const minuteOfDay = date.getHours() * 60 + date.getMinutes();
    const target = minuteOfDay + delta;
    const at = new Date(date.getFullYear(), date.getMonth(), date.getDate() + Math.floor(target / MINUTES_PER_DAY), 0, target % MINUTES_PER_DAY).getTime();
    // A boundary inside a skipped daylight-saving hour can come out at or before now.
    return at > now ? at : now + 60_000;
  }

  /** The windows as written, for `sinkhole check` and the dashboard. */
  describe(): string {
    return this.lines.map((l) => l.text).join(', ');
  }
}

export function minuteOfWeek(date: Date): number {
  return ((date.getDay() + 6) % 7) * MINUTES_PER_DAY + date.getHours() * 60 + date.getMinutes();
}

function clockText(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** Every `schedule` line -> one Schedule per name; overlapping windows in one schedule are an error. */
export function buildSchedules(lines: readonly ScheduleLine[]): Map<string, Schedule> {
  const byName = new Map<string, ScheduleLine[]>();
  for (const l of lines) {
    const list = byName.get(l.name) ?? [];
    list.push(l);
    byName.set(l.name, list);
  }
  const schedules = new Map<string, Schedule>();
  for (const [name, list] of byName) schedules.set(name, new Schedule(name, list));
  return schedules;
}

/**
 * `mon 12:30` (or `12:30` for today, `2026-12-07 12:30` for a date) -> a moment this week
 * in local time, for `sinkhole check --at`.
 */
export function parseAt(value: string, where: string, now = Date.now()): number {
  const text = value.trim().toLowerCase();
  const iso = /^(\d{4})-(\d{2})-(\d{2})[ t](\d{1,2}:\d{2})$/.exec(text);
  if (iso) {
    const minutes = parseClock(iso[4]!, where, false);
    return new Date(Number(iso[1]), Number(iso[2]) - 1, Number(iso[3]), 0, minutes).getTime();
  }
  const m = /^(?:([a-z]+)\s+)?(\d{1,2}:\d{2})$/.exec(text);
  if (!m) throw new ConfigError(`${where}: "${value}" is not a moment; write e.g. "mon 12:30", "12:30" or "2026-12-07 12:30"`);
  const minutes = parseClock(m[2]!, where, false);
  const today = new Date(now);
  const todayIndex = (today.getDay() + 6) % 7;
  const day = m[1] === undefined ? todayIndex : dayIndex(m[1], where, value);
  return new Date(today.getFullYear(), today.getMonth(), today.getDate() + day - todayIndex, 0, minutes).getTime();
}
