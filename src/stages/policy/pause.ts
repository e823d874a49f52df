// Pause: blocking stops for one group (or for all clients) until a moment, or until
// `resume`. The pauses live in a small JSON file in the state directory so that a restart
// does not end them (nor bring back one that has run out), and a timer ends each pause by
// itself. Nothing here runs per query: the group policy reads the pauses when it rebuilds
// its tables, and this class tells it when they change.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The key for "every group". */
export const ALL_GROUPS = '*';

export interface Pause {
  /** A group name, or ALL_GROUPS. */
  group: string;
  /** ms since the epoch; null: until `resume`. */
  until: number | null;
}

interface PauseFile {
  version: 1;
  pauses: Pause[];
}

/** A pause or resume a person ordered on this node (not one taken from the fleet or run out). */
export type PauseOrder = { op: 'pause'; group: string; until: number | null } | { op: 'resume'; group: string };

export class PauseState {
  private pauses = new Map<string, number | null>();
  private timer: NodeJS.Timeout | null = null;
  /** Called when a pause starts or ends (also by running out): rebuild the tables. */
  onChange: (() => void) | null = null;
  /** Called after a pause or resume ordered here (the fleet passes it on to the primary). */
  onOrder: ((order: PauseOrder) => void) | null = null;
  /** Why the file could not be read or written, for one log line (null: fine). */
  lastError: string | null = null;

  /** `file` null: kept in memory only (tests, no state directory). */
  constructor(readonly file: string | null, private readonly clock: () => number = Date.now) {
    if (file !== null) this.read(file);
    this.arm();
  }

  /** Pauses `group` (or ALL_GROUPS) for `forMs` (null: until resume). */
  pause(group: string, forMs: number | null): Pause {
    return this.pauseUntil(group, forMs === null ? null : this.clock() + forMs);
  }

  /** Pauses `group` until a moment (ms since the epoch; null: until resume). */
  pauseUntil(group: string, until: number | null): Pause {
    this.pauses.set(group.toLowerCase(), until);
    this.changed();
    const p = { group: group.toLowerCase(), until };
    this.onOrder?.({ op: 'pause', ...p });
    return p;
  }

  /** Takes the pauses another node decided (a fleet replica follows its primary's): no order is passed on. */
  adopt(pauses: readonly Pause[]): void {
    this.pauses = new Map(pauses.map((p) => [p.group.toLowerCase(), p.until]));
    this.changed();
  }

  /** The pauses of a pause.json text, or null when it is not one (data from another node is checked, not trusted). */
  static parse(text: string): Pause[] | null {
    try {
      const data = JSON.parse(text) as Partial<PauseFile>;
      if (!Array.isArray(data.pauses)) return null;
      return data.pauses.filter((p): p is Pause => typeof p === 'object' && p !== null && typeof p.group === 'string' && p.group.length <= 64 &&
        (p.until === null || (typeof p.until === 'number' && Number.isFinite(p.until))));
    } catch {
      return null;
    }
  }

  /** Ends the pause of `group` (ALL_GROUPS: every pause). Returns whether one was running. */
  resume(group: string = ALL_GROUPS): boolean {
    const key = group.toLowerCase();
    const had = key === ALL_GROUPS ? this.pauses.size > 0 : this.pauses.has(key);
    if (key === ALL_GROUPS) this.pauses.clear();
    else this.pauses.delete(key);
    if (had) this.changed();
    this.onOrder?.({ op: 'resume', group: key });
    return had;
  }

  /** Whether blocking is paused for `group` at `now`. */
  isPaused(group: string, now = this.clock()): boolean {
    return this.runs(this.pauses.get(ALL_GROUPS), now) || this.runs(this.pauses.get(group), now);
  }

  /** The pauses still running, for the API and the dashboard. */
  list(now = this.clock()): Pause[] {
    return [...this.pauses].filter(([, until]) => this.runs(until, now)).map(([group, until]) => ({ group, until }));
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.onChange = null;
    this.onOrder = null;
  }

  private runs(until: number | null | undefined, now: number): boolean {
    return until === null || (until !== undefined && until > now);
  }

  private changed(): void {
    this.dropExpired();
    if (this.file !== null) this.write(this.file);
    this.arm();
    this.onChange?.();
  }

  private dropExpired(): void {
    const now = this.clock();
    for (const [group, until] of this.pauses) if (!this.runs(until, now)) this.pauses.delete(group);
  }

  /** A timer for the first pause to run out. */
  private arm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    let first = Infinity;
    for (const until of this.pauses.values()) if (until !== null && until < first) first = until;
    if (first === Infinity) return;
    // setTimeout holds at most 2^31-1 ms; a longer pause is looked at again then.
    const wait = Math.min(Math.max(first - this.clock(), 0) + 5, 0x7fffffff);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.changed();
    }, wait);
    this.timer.unref();
  }

  private read(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.lastError = `cannot read ${file} (${code ?? (err as Error).message}); starting with no pause`;
      return;
    }
    try {
      const data = JSON.parse(text) as Partial<PauseFile>;
      for (const p of data.pauses ?? []) {
        if (typeof p.group === 'string' && (p.until === null || typeof p.until === 'number')) this.pauses.set(p.group, p.until);
      }
      this.dropExpired();
    } catch {
      this.lastError = `${file} is not valid JSON; starting with no pause (it is rewritten at the next pause)`;
    }
  }

  /** Written beside and renamed over, so a crash never leaves half a file. */
  private write(file: string): void {
    const data: PauseFile = { version: 1, pauses: [...this.pauses].map(([group, until]) => ({ group, until })) };
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.tmp`, `${JSON.stringify(data)}\n`);
      renameSync(`${file}.tmp`, file);
      this.lastError = null;
    } catch (err) {
      this.lastError = `cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the pause holds until a restart`;
    }
  }
}
