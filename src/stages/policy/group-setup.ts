// Putting groups together for the server: the config lines (group, schedule, block, allow,
// list-url) as one PolicySettings value, and a GroupRuntime that owns what lives as long as
// the server (the pause state, the list subscriptions) and compiles GroupPolicy values
// against the bundles that exist (the blocklist folder, its available/ subfolder, stored
// subscriptions).
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ConfigError } from '../../config/errors.js';
import type { ClientNameSource } from '../../observe/client-names.js';
import type { Logger } from '../../observe/log.js';
import { compileGroupPolicy, parseAllowLine, parseBlockLine, type BundleRuleLine, type GroupPolicy } from './group-policy.js';
import { parseGroupLine, type GroupLine } from './groups.js';
import { standbyLists, type ExtraList } from './load.js';
import { PauseState } from './pause.js';
import { parseScheduleLine, type ScheduleLine } from './schedules.js';
import { parseListUrlLine, Subscriptions, type FetchResult, type ListUrlLine, type SubscriptionOptions } from './sources/subscription.js';

export interface PolicySettings {
  groups: GroupLine[];
  schedules: ScheduleLine[];
  /** `block` and `allow` lines in file order. */
  rules: BundleRuleLine[];
  listUrls: ListUrlLine[];
  /** Where pause.json and downloaded lists live; null: pauses are kept in memory and list-url is refused. */
  stateDir: string | null;
}

export function emptyPolicySettings(stateDir: string | null = null): PolicySettings {
  return { groups: [], schedules: [], rules: [], listUrls: [], stateDir };
}

/** The setting names this module reads, each with its parser. */
export const POLICY_SETTINGS = ['group', 'schedule', 'block', 'allow', 'list-url'] as const;

/**
 * Raw config lines (`name value` with where each came from) -> PolicySettings; other
 * setting names are left alone. Throws ConfigError naming file:line.
 */
export function policySettingsFrom(lines: readonly { name: string; value: string; where: string }[], stateDir: string | null): PolicySettings {
  const s = emptyPolicySettings(stateDir);
  for (const { name, value, where } of lines) {
    if (name === 'group') s.groups.push(parseGroupLine(value, where));
    else if (name === 'schedule') s.schedules.push(parseScheduleLine(value, where));
    else if (name === 'block') s.rules.push(parseBlockLine(value, where));
    else if (name === 'allow') s.rules.push(parseAllowLine(value, where));
    else if (name === 'list-url') s.listUrls.push(parseListUrlLine(value, where));
  }
  if (s.listUrls.length > 0 && stateDir === null) {
    throw new ConfigError(`${s.listUrls[0]!.where}: list-url needs a state directory to keep the lists in; set "state-dir /var/lib/sinkhole"`);
  }
  return s;
}

/**
 * A group member given by name needs client-names files (the server refuses to start
 * without them; `sinkhole check` reads no leases and lets such members match nobody).
 */
export function requireClientNames(settings: PolicySettings, haveNames: boolean): void {
  if (haveNames) return;
  for (const g of settings.groups) {
    if (g.clientNames.length > 0) {
      throw new ConfigError(`${g.where}: group ${g.name}: "${g.clientNames[0]}" is a client name and no client-names file is given; add "client-names /var/lib/misc/dnsmasq.leases" (or a hosts file), or give an address`);
    }
  }
}

/** A fleet replica's copy of the primary's lists: NAME.txt blocks like an enabled file, NAME.catalogue/ID.txt only for groups naming ID. */
function followedLists(dir: string | null): ExtraList[] {
  if (dir === null) return [];
  const txt = (d: string): string[] => {
    try {
      return readdirSync(d).filter((n) => n.endsWith('.txt') && !n.startsWith('.')).sort();
    } catch {
      return [];
    }
  };
  const out: ExtraList[] = txt(dir).map((n) => ({ path: join(dir, n), standby: false }));
  let catalogues: string[] = [];
  try {
    catalogues = readdirSync(dir).filter((n) => n.endsWith('.catalogue')).sort();
  } catch {
    catalogues = [];
  }
  for (const c of catalogues) out.push(...txt(join(dir, c)).map((n) => ({ path: join(dir, c, n), standby: true })));
  return out;
}

export class GroupRuntime {
  readonly pause: PauseState;
  /** Every list-url of the state directory, also none (a reload may add some); null without a state directory. */
  private readonly lists: Subscriptions | null;
  /** Called when a subscription stored a new copy: reload the rule set. */
  onListsUpdated: ((results: FetchResult[]) => void) | null = null;
  /** The client-names files (`client-names`): members of groups given by name resolve through them. */
  clientNames: ClientNameSource | null = null;

  /**
   * `followedLists`: a fleet replica's copy of the primary's list-url lists (src/fleet/): then
   * nothing is fetched here, and the lists load from that folder.
   */
  constructor(private settings: PolicySettings, private readonly blocklists: string, private readonly log: Logger,
    subscriptionOptions: Partial<SubscriptionOptions> = {}, private readonly followedLists: string | null = null) {
    this.pause = new PauseState(settings.stateDir === null ? null : join(settings.stateDir, 'pause.json'));
    if (this.pause.lastError !== null) log.warn({ reason: this.pause.lastError }, this.pause.lastError);
    this.lists = settings.stateDir === null || followedLists !== null ? null
      : new Subscriptions(settings.listUrls, { ...subscriptionOptions, stateDir: settings.stateDir }, log);
    if (followedLists !== null && settings.listUrls.length > 0) {
      log.info({ lists: settings.listUrls.map((l) => l.bundle) }, 'replica: list-url lists come from the fleet\'s primary, which fetches them; none is fetched here');
    }
    if (this.lists !== null) this.lists.onUpdated = (results) => this.onListsUpdated?.(results);
  }

  /** The list subscriptions in force, or null when no list-url line is. */
  get subscriptions(): Subscriptions | null {
    return this.lists === null || this.lists.count === 0 ? null : this.lists;
  }

  /** Lists to load with the folder: stored subscriptions, and bundles in available/ that block or allow lines name. */
  extraLists(): ExtraList[] {
    const named = this.settings.rules.flatMap((r) => r.bundles);
    return [...(this.subscriptions?.lists() ?? []), ...followedLists(this.followedLists), ...standbyLists(this.blocklists, named)];
  }

  /** The stored list-url copies this node fetched (what a fleet primary publishes), with their folder. */
  storedLists(): { dir: string; paths: string[] } | null {
    if (this.subscriptions === null || this.settings.stateDir === null) return null;
    return { dir: join(this.settings.stateDir, 'lists'), paths: this.subscriptions.lists().map((l) => l.path) };
  }

  /** Whether a bundle name exists (for block/allow lines). */
  bundleStatus = (name: string): 'known' | 'pending' | 'unknown' => {
    if (this.inFolder(name)) return 'known';
    if (this.followedLists === null) return this.lists?.bundleStatus(name) ?? 'unknown';
    const file = `${name.toLowerCase()}.txt`;
    if (followedLists(this.followedLists).some((l) => basename(l.path) === file)) return 'known';
    // The primary's copy has not arrived yet: a list-url bundle (or any, with a catalogue) is to come.
    const n = name.toLowerCase();
    return this.settings.listUrls.some((l) => l.bundle === n || /\.json$/i.test(l.url)) ? 'pending' : 'unknown';
  };

  /** The bundle is a file of the blocklist folder or its available/ subfolder. */
  private inFolder(name: string): boolean {
    const file = `${name.toLowerCase()}.txt`;
    return existsSync(join(this.blocklists, file)) || existsSync(join(this.blocklists, 'available', file));
  }

  /** Compiles the group policy (ConfigError on a bad line); logs one warning per bundle still to be downloaded. */
  compile(settings: PolicySettings = this.settings, bundleStatus = this.bundleStatus): GroupPolicy {
    const { policy, warnings } = compileGroupPolicy(settings, bundleStatus, this.pause);
    policy.groups.useClientNames(this.clientNames);
    for (const w of warnings) this.log.warn({ where: w.slice(0, w.indexOf(': ')) }, w);
    this.settings = settings;
    return policy;
  }

  /**
   * A config reload: the new list-url lines and the group policy are checked together, and
   * only when both are good do the lists change (added, removed, new URL or interval) and the
   * policy come back; a bad line throws ConfigError with nothing changed.
   */
  reconfigure(settings: PolicySettings): GroupPolicy {
    // A fleet replica fetches nothing: its lists are the primary's.
    if (this.followedLists !== null) return this.compile(settings);
    if (this.lists === null) {
      if (settings.listUrls.length > 0) throw new ConfigError(`${settings.listUrls[0]!.where}: list-url needs a state directory to keep the lists in; set "state-dir /var/lib/sinkhole" and restart`);
      return this.compile(settings);
    }
    const plan = this.lists.plan(settings.listUrls);
    const policy = this.compile(settings, (name) => (this.inFolder(name) ? 'known' : plan.bundleStatus(name)));
    this.lists.commit(plan);
    for (const change of plan.changes) this.log.info({ change }, change);
    return policy;
  }

  /** Starts fetching subscriptions (DNS does not wait for them). */
  start(): void {
    this.lists?.start();
  }

  close(): void {
    this.lists?.stop();
    this.pause.close();
  }
}
