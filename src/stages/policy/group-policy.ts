// Which bundles block for which group, now. Compiled from the config lines
//
//   group    NAME CIDR|IP ...
//   schedule NAME DAYS HH:MM-HH:MM
//   block    GROUP BUNDLE... [during SCHEDULE]      block GROUP none
//   allow    GROUP BUNDLE... [during SCHEDULE]
//
// into one table: a byte per (group, bundle), 1 = "a rule of this bundle blocks for this
// group now". The table is rebuilt when a schedule boundary passes (a timer), when a pause
// starts or ends, and when the rule set changes; a query only indexes it.
//
// Semantics: with no `block` line for a group, every enabled bundle blocks for it (today's
// behaviour). A group with `block` lines is blocked by exactly the bundles listed (those
// with `during S` only while S is in force); `allow GROUP B during S` unblocks B while S is
// in force and wins over `block`. A paused group blocks nothing.
import { ConfigError } from '../../config/errors.js';
import { bundleCount, bundleId, bundleNameOf } from './bundle-ids.js';
import { DEFAULT_GROUP, GroupTable, type GroupLine } from './groups.js';
import type { PauseState } from './pause.js';
import { buildSchedules, type Schedule, type ScheduleLine } from './schedules.js';

/** A `block` or `allow` line. */
export interface BundleRuleLine {
  kind: 'block' | 'allow';
  group: string;
  /** Bundle names, lower case; empty for `block GROUP none`. */
  bundles: string[];
  none: boolean;
  schedule: string | null;
  where: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

function parseBundleRule(kind: 'block' | 'allow', value: string, where: string): BundleRuleLine {
  const words = value.trim().split(/\s+/).filter((w) => w !== '').map((w) => w.toLowerCase());
  const usage = kind === 'block'
    ? 'expected "block GROUP BUNDLE... [during SCHEDULE]" or "block GROUP none" (e.g. block staff whatsapp telegram)'
    : 'expected "allow GROUP BUNDLE... [during SCHEDULE]" (e.g. allow staff whatsapp during lunch)';
  const during = words.indexOf('during');
  let schedule: string | null = null;
  if (during >= 0) {
    if (during !== words.length - 2) throw new ConfigError(`${where}: ${usage}; "during" takes one schedule name at the end of the line`);
    schedule = words[during + 1]!;
    words.length = during;
  }
  if (words.length < 2) throw new ConfigError(`${where}: ${usage}, found "${kind} ${value.trim()}"`);
  const [group, ...bundles] = words as [string, ...string[]];
  const none = bundles.length === 1 && bundles[0] === 'none';
  if (none && kind === 'allow') throw new ConfigError(`${where}: "allow GROUP none" means nothing; write "block ${group} none" to block nothing for ${group}`);
  if (none && schedule !== null) throw new ConfigError(`${where}: "block ${group} none" takes no schedule; use "allow ${group} BUNDLE... during ${schedule}" instead`);
  if (!none && bundles.includes('none')) throw new ConfigError(`${where}: "none" stands alone; write "block ${group} none" on its own line`);
  for (const b of bundles) if (!NAME.test(b)) throw new ConfigError(`${where}: "${b}" is not a bundle name (see "sinkhole list")`);
  return { kind, group, bundles: none ? [] : bundles, none, schedule, where };
}

/** The value of a `block` line. */
export function parseBlockLine(value: string, where: string): BundleRuleLine {
  return parseBundleRule('block', value, where);
}

/** The value of an `allow` line. */
export function parseAllowLine(value: string, where: string): BundleRuleLine {
  return parseBundleRule('allow', value, where);
}

export interface GroupPolicyLines {
  groups: readonly GroupLine[];
  schedules: readonly ScheduleLine[];
  /** `block` and `allow` lines, in any order. */
  rules: readonly BundleRuleLine[];
}

/**
 * Whether a bundle name exists: 'known' (a file in the blocklist folder, enabled or in
 * available/, or a stored subscription), 'pending' (a list-url will provide it: accepted,
 * with a warning until it exists), 'unknown' (an error).
 */
export type BundleStatus = (name: string) => 'known' | 'pending' | 'unknown';

interface CompiledRule {
  bundle: number;
  schedule: Schedule | null;
}

interface GroupRules {
  /** False: no block line names the group, so every enabled bundle blocks. */
  listed: boolean;
  blocks: CompiledRule[];
  allows: CompiledRule[];
}

export interface GroupExplanation {
  group: string;
  /** The network that put the client in its group, with its config line; null for default. */
  matchedBy: { cidr: string; where: string } | null;
  /** Schedules the group's lines use, with whether each is in force at the moment asked about. */
  schedules: { name: string; windows: string; inForce: boolean }[];
  paused: boolean;
  /** Whether the group's blocks come from block lines (false: every enabled bundle). */
  listed: boolean;
}

export class GroupPolicy {
  /** active[group * stride + bundle] === 1: the bundle's rules block for the group now. Read per query. */
  active: Uint8Array = new Uint8Array(0);
  stride = 0;
  private enabled: readonly number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly perGroup: GroupRules[];
  /** Schedules some line uses: their boundaries are when the table changes. */
  private readonly used: Schedule[];

  constructor(readonly groups: GroupTable, readonly schedules: ReadonlyMap<string, Schedule>, rules: readonly BundleRuleLine[],
    private readonly pause: PauseState | null = null, private readonly clock: () => number = Date.now) {
    this.perGroup = groups.names.map(() => ({ listed: false, blocks: [], allows: [] }));
    const used = new Set<Schedule>();
    for (const r of rules) {
      const target = this.perGroup[groups.indexOf(r.group)]!;
      const schedule = r.schedule === null ? null : schedules.get(r.schedule)!;
      if (schedule !== null) used.add(schedule);
      if (r.kind === 'block') target.listed = true;
      for (const b of r.bundles) (r.kind === 'block' ? target.blocks : target.allows).push({ bundle: bundleId(b), schedule });
    }
    this.used = [...used];
  }

  /** The group index of a client address (0: default). */
  groupOf(address: string): number {
    return this.groups.groupOf(address);
  }

  groupName(group: number): string {
    return this.groups.names[group] ?? DEFAULT_GROUP;
  }

  /** Whether bundle `bundle` blocks for `group` now (the table; no work beyond an index). */
  blocks(group: number, bundle: number): boolean {
    return this.active[group * this.stride + bundle] === 1;
  }

  /** The bundles that are enabled (files at the top of the blocklist folder, subscriptions): they block for unlisted groups. */
  setEnabledBundles(ids: Iterable<number>): void {
    this.enabled = [...ids];
    this.rebuild();
  }

  /** Recomputes the table for the current moment. Called by the timer, pauses and rule set swaps. */
  rebuild(now = this.clock()): void {
    const stride = bundleCount();
    const active = new Uint8Array(this.perGroup.length * stride);
    for (let g = 0; g < this.perGroup.length; g++) this.fillRow(g, now, active, g * stride);
    // Both in one go for readers: no await between, and a reader takes both fields in one turn.
    this.stride = stride;
    this.active = active;
  }

  /** Whether `bundle` blocks for `group` at an arbitrary moment (for `check --at`; not for queries). */
  blocksAt(group: number, bundle: number, at: number): boolean {
    return this.rowAt(group, at)[bundle] === 1;
  }

  /** The group's row of the table as it would be at `at` (index by bundle). Not for queries. */
  rowAt(group: number, at: number): Uint8Array {
    const row = new Uint8Array(bundleCount());
    this.fillRow(group, at, row, 0);
    return row;
  }

  /** The bundles that block for `group` at `at`, by name (check, dashboard); `pauses: false` as if no pause ran (what a pause switches off). */
  blockingAt(group: number, at: number, { pauses = true } = {}): string[] {
    const row = new Uint8Array(bundleCount());
    this.fillRow(group, at, row, 0, pauses);
    const names: string[] = [];
    row.forEach((v, id) => {
      if (v === 1) names.push(bundleNameOf(id));
    });
    return names.sort();
  }

  explain(address: string, at: number): GroupExplanation {
    const group = this.groupOf(address);
    const rules = this.perGroup[group]!;
    const seen = new Set<Schedule>();
    for (const r of [...rules.blocks, ...rules.allows]) if (r.schedule !== null) seen.add(r.schedule);
    return {
      group: this.groupName(group),
      matchedBy: this.groups.matchedBy(address),
      schedules: [...seen].map((s) => ({ name: s.name, windows: s.describe(), inForce: s.isActive(at) })),
      paused: this.pause?.isPaused(this.groupName(group), at) ?? false,
      listed: rules.listed,
    };
  }

  /** Starts the boundary timer and listens to pauses. Call once the policy is live; stop() before dropping it. */
  start(): void {
    if (this.pause !== null) this.pause.onChange = () => this.rebuild();
    this.rebuild();
    this.arm();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** When the table next changes by itself (a schedule boundary), in ms since the epoch; null: never. */
  nextBoundary(now = this.clock()): number | null {
    let next = Infinity;
    for (const s of this.used) next = Math.min(next, s.nextBoundary(now));
    return next === Infinity ? null : next;
  }

  private arm(): void {
    this.stop();
    const now = this.clock();
    const next = this.nextBoundary(now);
    if (next === null) return;
    // At most a minute: a clock set forward or back is noticed within one.
    const wait = Math.min(next - now, 60_000) + 2;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.rebuild();
      this.arm();
    }, wait);
    this.timer.unref();
  }

  private fillRow(group: number, now: number, out: Uint8Array, base: number, pauses = true): void {
    if (pauses && this.pause !== null && this.pause.isPaused(this.groupName(group), now)) return;
    const rules = this.perGroup[group]!;
    if (rules.listed) {
      for (const r of rules.blocks) if (r.schedule === null || r.schedule.isActive(now)) out[base + r.bundle] = 1;
    } else {
      for (const id of this.enabled) out[base + id] = 1;
    }
    for (const r of rules.allows) if (r.schedule === null || r.schedule.isActive(now)) out[base + r.bundle] = 0;
  }
}

export interface CompiledGroupPolicy {
  policy: GroupPolicy;
  /** One line each, for the log: bundles named before their list-url has delivered them. */
  warnings: string[];
}

/**
 * Checks the lines against each other and the bundles that exist, and compiles them.
 * Throws ConfigError (file:line, what, the fix) for an unknown group, bundle or schedule;
 * schedules' own errors (overlaps) come from buildSchedules.
 */
export function compileGroupPolicy(lines: GroupPolicyLines, bundleStatus: BundleStatus, pause: PauseState | null = null,
  clock: () => number = Date.now): CompiledGroupPolicy {
  const groups = new GroupTable(lines.groups);
  const schedules = buildSchedules(lines.schedules);
  const warnings: string[] = [];
  const noneAt = new Map<string, string>();
  const listedAt = new Map<string, string>();
  for (const r of lines.rules) {
    if (groups.indexOf(r.group) < 0) {
      throw new ConfigError(`${r.where}: unknown group "${r.group}"; define it with "group ${r.group} CIDR..." or use one of: ${groups.names.join(', ')}`);
    }
    if (r.schedule !== null && !schedules.has(r.schedule)) {
      const known = [...schedules.keys()];
      throw new ConfigError(`${r.where}: unknown schedule "${r.schedule}"; define it with "schedule ${r.schedule} DAYS HH:MM-HH:MM"${known.length > 0 ? ` or use one of: ${known.join(', ')}` : ''}`);
    }
    for (const b of r.bundles) {
      const status = bundleStatus(b);
      if (status === 'unknown') throw new ConfigError(`${r.where}: unknown bundle "${b}"; see "sinkhole list" for the bundles, or add "list-url ${b} URL"`);
      if (status === 'pending') warnings.push(`${r.where}: bundle "${b}" is not downloaded yet; it blocks once its list-url has delivered it`);
    }
    if (r.kind === 'block' && r.none) noneAt.set(r.group, r.where);
    else if (r.kind === 'block') listedAt.set(r.group, r.where);
  }
  for (const [group, where] of noneAt) {
    const other = listedAt.get(group);
    if (other !== undefined) throw new ConfigError(`${where}: "block ${group} none" contradicts the block line at ${other}; keep one of them`);
  }
  return { policy: new GroupPolicy(groups, schedules, lines.rules, pause, clock), warnings };
}
