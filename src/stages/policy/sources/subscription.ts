// List subscriptions: `list-url BUNDLE URL [every DURATION]`. Each list is fetched over
// HTTP(S) with a timeout and a size cap, asked for with If-None-Match / If-Modified-Since,
// and stored in the state directory, from where the rule set loads it like an enabled file
// of the blocklist folder. DNS never waits for a download: the stored copy is used at
// startup, and a fetch that fails, returns garbage (more than half its lines invalid) or
// shrinks the list by more than 90% leaves the stored copy in force (one log line each).
//
// A body that is AdGuard's service catalogue (HostlistsRegistry `services.json`:
// {"blocked_services": [{"id", "name", "rules": ["||domain^", ...]}]}) becomes one bundle
// per service, named by its id. Those bundles are standby: they block only for groups
// whose `block` lines name them (a catalogue has a hundred services, most of them not
// messengers).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isUtf8 } from 'node:buffer';
import { ConfigError } from '../../../config/errors.js';
import type { Logger } from '../../../observe/log.js';
import { formatDuration, parseDuration } from '../duration.js';
import { parseListBytes } from '../list-file.js';
import type { ExtraList } from '../load.js';

const NAME = /^[a-z0-9][a-z0-9._-]*$/;
export const DEFAULT_EVERY_MS = 24 * 3_600_000;

export interface ListUrlLine {
  bundle: string;
  url: string;
  everyMs: number;
  where: string;
}

/** The value of a `list-url` line: `BUNDLE URL [every DURATION]`. */
export function parseListUrlLine(value: string, where: string): ListUrlLine {
  const words = value.trim().split(/\s+/).filter((w) => w !== '');
  const usage = 'expected "list-url BUNDLE URL [every DURATION]" (e.g. list-url whatsapp https://lists.example/whatsapp.txt every 24h)';
  if (words.length !== 2 && !(words.length === 4 && words[2]!.toLowerCase() === 'every')) throw new ConfigError(`${where}: ${usage}, found "list-url ${value.trim()}"`);
  const bundle = words[0]!.toLowerCase();
  if (!NAME.test(bundle)) throw new ConfigError(`${where}: "${words[0]}" is not a bundle name; use letters, digits, ., - and _`);
  let url: URL;
  try {
    url = new URL(words[1]!);
  } catch {
    throw new ConfigError(`${where}: "${words[1]}" is not a URL; write it as https://host/path`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${where}: ${url.protocol} URLs cannot be fetched; use https:// (or http://)`);
  const everyMs = words.length === 4 ? parseDuration(words[3]!, where) : DEFAULT_EVERY_MS;
  if (everyMs < 60_000) throw new ConfigError(`${where}: "every ${words[3]}" is too often for a list site; give at least 1m (24h is usual)`);
  return { bundle, url: url.href, everyMs, where };
}

export interface SubscriptionOptions {
  /** The state directory; lists are kept in its `lists/` folder. */
  stateDir: string;
  timeoutMs: number;
  /** Bodies larger than this are refused (the stored copy stays). */
  maxBytes: number;
  /** Each refresh comes at the interval times 1 ± jitter (a random share), so a fleet does not knock at once. */
  jitter: number;
  /** The first fetch of a list with no stored copy comes within this many ms of start(). */
  firstFetchWithinMs: number;
}

export const DEFAULT_SUBSCRIPTION_OPTIONS: Omit<SubscriptionOptions, 'stateDir'> = {
  timeoutMs: 30_000, maxBytes: 32 * 1024 * 1024, jitter: 0.1, firstFetchWithinMs: 2_000,
};

export type FetchOutcome = 'updated' | 'unchanged' | 'failed' | 'garbage' | 'shrunk';

export interface FetchResult {
  bundle: string;
  url: string;
  outcome: FetchOutcome;
  /** Rules in force for the bundle after this fetch (the stored copy's when it was kept). */
  rules: number;
  reason?: string;
}

interface Meta {
  url: string;
  etag?: string;
  lastModified?: string;
  /** When the stored copy last came from the site (or was confirmed unchanged). */
  checkedAt: number;
  rules: number;
  kind: 'list' | 'catalogue';
  /** Service ids of a catalogue. */
  services?: string[];
}

interface CatalogueService {
  id: string;
  name: string;
  rules: string[];
}

/** `services.json` -> its services, or null when the body is not one. */
export function parseCatalogue(text: string): CatalogueService[] | null {
  if (!/^\s*\{/.test(text)) return null;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  const list = (data as { blocked_services?: unknown }).blocked_services;
  if (!Array.isArray(list)) return null;
  const services: CatalogueService[] = [];
  for (const s of list as { id?: unknown; name?: unknown; rules?: unknown }[]) {
    if (typeof s?.id !== 'string' || !Array.isArray(s.rules)) continue;
    const id = s.id.toLowerCase();
    if (!NAME.test(id)) continue;
    services.push({ id, name: typeof s.name === 'string' ? s.name : id, rules: s.rules.filter((r): r is string => typeof r === 'string') });
  }
  return services;
}

/** Lines with a rule and invalid lines of a list's bytes: the garbage test. */
function judge(path: string, bytes: Buffer): { rules: number; valid: number; invalid: number } {
  const parsed = parseListBytes(path, bytes);
  let valid = parsed.ipRules.length;
  let last = -1;
  for (let i = 0; i < parsed.lines.length; i++) {
    if (parsed.lines[i] !== last) valid++;
    last = parsed.lines[i]!;
  }
  return { rules: parsed.keys.length + parsed.ipRules.length, valid, invalid: parsed.invalidCount };
}

export class Subscription {
  timer: NodeJS.Timeout | null = null;
  running: Promise<FetchResult> | null = null;
  meta: Meta | null;
  /** Its line left the config (or changed): a fetch under way stores nothing and no next one is scheduled. */
  removed = false;

  /** Its config line; a reload that keeps the URL and interval puts the line's new place here. */
  constructor(public line: ListUrlLine, readonly dir: string) {
    this.meta = this.readMeta();
  }

  get listPath(): string {
    return join(this.dir, `${this.line.bundle}.txt`);
  }

  get cataloguePath(): string {
    return join(this.dir, `${this.line.bundle}.catalogue`);
  }

  get metaPath(): string {
    return join(this.dir, `${this.line.bundle}.meta.json`);
  }

  private readMeta(): Meta | null {
    try {
      return JSON.parse(readFileSync(this.metaPath, 'utf8')) as Meta;
    } catch {
      return null;
    }
  }

  /** The stored copy as files to load. */
  stored(): ExtraList[] {
    if (this.meta === null) return [];
    if (this.meta.kind === 'list') return existsSync(this.listPath) ? [{ path: this.listPath, standby: false }] : [];
    return (this.meta.services ?? []).map((id) => ({ path: join(this.cataloguePath, `${id}.txt`), standby: true }))
      .filter((e) => existsSync(e.path));
  }

  writeMeta(meta: Meta): void {
    writeAtomic(this.metaPath, `${JSON.stringify(meta)}\n`);
    this.meta = meta;
  }
}

function writeAtomic(path: string, data: string | Buffer): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

/** A set of list-url lines checked against the running ones, not yet in force (Subscriptions.plan, commit). */
export interface SubscriptionPlan {
  readonly subs: readonly Subscription[];
  /** The lines, in the order of subs. */
  readonly lines: readonly ListUrlLine[];
  /** One line per change: "list-url viber added", "... URL changed", "... removed". */
  readonly changes: readonly string[];
  bundleStatus(name: string): 'known' | 'pending' | 'unknown';
}

/** One list-url per bundle; ConfigError naming the second line otherwise. */
function checkOnePerBundle(lines: readonly ListUrlLine[]): void {
  const seen = new Map<string, string>();
  for (const l of lines) {
    const before = seen.get(l.bundle);
    if (before !== undefined) throw new ConfigError(`${l.where}: bundle ${l.bundle} already has a list-url (${before}); give each bundle one URL`);
    seen.set(l.bundle, l.where);
  }
}

/** 'known' when a stored copy provides the bundle, 'pending' when a list-url will, else 'unknown' (see Subscriptions.bundleStatus). */
function statusIn(subs: readonly Subscription[], name: string): 'known' | 'pending' | 'unknown' {
  const n = name.toLowerCase();
  let pending = false;
  for (const s of subs) {
    if (s.meta?.kind === 'list' && s.line.bundle === n) return 'known';
    if (s.meta?.kind === 'catalogue' && s.meta.services?.includes(n)) return 'known';
    if (s.line.bundle === n) pending = true;
    if (s.meta === null && /\.json$/i.test(new URL(s.line.url).pathname)) pending = true;
  }
  return pending ? 'pending' : 'unknown';
}

export class Subscriptions {
  private subs: Subscription[];
  private readonly options: SubscriptionOptions;
  private readonly dir: string;
  private stopped = false;
  private started = false;
  /** Called after a fetch changed a stored copy: reload the rule set (within 5 s is the promise). */
  onUpdated: ((results: FetchResult[]) => void) | null = null;

  constructor(lines: readonly ListUrlLine[], options: Partial<SubscriptionOptions> & { stateDir: string }, private readonly log: Logger,
    private readonly clock: () => number = Date.now) {
    this.options = { ...DEFAULT_SUBSCRIPTION_OPTIONS, ...options };
    this.dir = join(this.options.stateDir, 'lists');
    checkOnePerBundle(lines);
    if (lines.length > 0) mkdirSync(this.dir, { recursive: true });
    this.subs = lines.map((l) => new Subscription(l, this.dir));
  }

  /** How many list-url lines are in force. */
  get count(): number {
    return this.subs.length;
  }

  /**
   * New list-url lines (a config reload), checked but not in force: a bundle whose URL and
   * interval are unchanged keeps its subscription (and its timer); a new or changed line
   * gets a new one that reads the stored copy. Throws ConfigError (two lines for a bundle).
   */
  plan(lines: readonly ListUrlLine[]): SubscriptionPlan {
    checkOnePerBundle(lines);
    const running = new Map(this.subs.map((s) => [s.line.bundle, s]));
    const changes: string[] = [];
    const subs = lines.map((l) => {
      const before = running.get(l.bundle);
      if (before !== undefined && before.line.url === l.url && before.line.everyMs === l.everyMs) return before;
      if (before === undefined) changes.push(`list-url ${l.bundle} added (${l.where})`);
      else changes.push(`list-url ${l.bundle}: ${before.line.url !== l.url ? 'URL' : 'interval'} changed (${l.where})`);
      return new Subscription(l, this.dir);
    });
    for (const s of this.subs) if (!lines.some((l) => l.bundle === s.line.bundle)) changes.push(`list-url ${s.line.bundle} removed`);
    return { subs, lines, changes, bundleStatus: (name) => statusIn(subs, name) };
  }

  /**
   * Puts a plan in force: subscriptions left out stop (their stored files stay on disk, no
   * longer loaded); new ones are scheduled as at start: soon when their stored copy is
   * missing, from another URL or due, else when due at the new interval.
   */
  commit(plan: SubscriptionPlan): void {
    const kept = new Set(plan.subs);
    for (const s of this.subs) {
      if (kept.has(s)) continue;
      s.removed = true;
      if (s.timer !== null) clearTimeout(s.timer);
      s.timer = null;
    }
    const fresh = plan.subs.filter((s) => !this.subs.includes(s));
    plan.subs.forEach((s, i) => (s.line = plan.lines[i]!));
    if (fresh.length > 0) mkdirSync(this.dir, { recursive: true });
    this.subs = [...plan.subs];
    if (this.started) this.scheduleFirst(fresh);
  }

  /** The stored copies to load with the blocklist folder (Reloader.extraLists). */
  lists(): ExtraList[] {
    return this.subs.flatMap((s) => s.stored());
  }

  /**
   * For `block` lines: 'known' when a stored copy provides the bundle, 'pending' when a
   * list-url will (its own bundle name, or any name while a catalogue-looking URL (.json)
   * has not been fetched yet), else 'unknown'.
   */
  bundleStatus(name: string): 'known' | 'pending' | 'unknown' {
    return statusIn(this.subs, name);
  }

  /** Schedules every list: soon when it has no stored copy or the copy is due, else when it falls due. */
  start(): void {
    this.started = true;
    this.scheduleFirst(this.subs);
  }

  private scheduleFirst(subs: readonly Subscription[]): void {
    const now = this.clock();
    for (const s of subs) {
      const due = s.meta === null || s.meta.url !== s.line.url ? now : s.meta.checkedAt + s.line.everyMs;
      const soon = Math.random() * this.options.firstFetchWithinMs;
      this.schedule(s, Math.max(due - now, soon));
    }
  }

  /** Fetches every list now (`sinkhole lists update`); resolves when all are done. */
  async updateNow(): Promise<FetchResult[]> {
    const results = await Promise.all(this.subs.map((s) => this.run(s)));
    return results;
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.subs) if (s.timer !== null) clearTimeout(s.timer);
  }

  /** Where each list stands, for the API and `sinkhole lists`. */
  status(): { bundle: string; url: string; checkedAt: number | null; rules: number; kind: string }[] {
    return this.subs.map((s) => ({ bundle: s.line.bundle, url: s.line.url, checkedAt: s.meta?.checkedAt ?? null, rules: s.meta?.rules ?? 0, kind: s.meta?.kind ?? 'not fetched yet' }));
  }

  private schedule(s: Subscription, inMs: number): void {
    if (this.stopped || s.removed) return;
    if (s.timer !== null) clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = null;
      void this.run(s);
    }, Math.min(Math.max(inMs, 0), 0x7fffffff));
    s.timer.unref();
  }

  private run(s: Subscription): Promise<FetchResult> {
    if (s.running !== null) return s.running;
    s.running = this.fetchOne(s).then((result) => {
      s.running = null;
      const j = this.options.jitter;
      this.schedule(s, s.line.everyMs * (1 - j + 2 * j * Math.random()));
      if (result.outcome === 'updated' && !s.removed) this.onUpdated?.([result]);
      return result;
    });
    return s.running;
  }

  private async fetchOne(s: Subscription): Promise<FetchResult> {
    const { line } = s;
    const kept = (outcome: FetchOutcome, reason: string, level: 'warn' | 'error' = 'warn'): FetchResult => {
      const stored = s.meta !== null ? `keeping the stored copy (${s.meta.rules} rules)` : 'no stored copy yet, the bundle stays empty';
      this.log[level]({ bundle: line.bundle, url: line.url, where: line.where, reason }, `list-url ${line.bundle}: ${reason}; ${stored}`);
      return { bundle: line.bundle, url: line.url, outcome, rules: s.meta?.rules ?? 0, reason };
    };
    const headers: Record<string, string> = { 'user-agent': 'sinkhole (list-url)' };
    const sameUrl = s.meta !== null && s.meta.url === line.url;
    if (sameUrl && s.meta!.etag) headers['if-none-match'] = s.meta!.etag;
    if (sameUrl && s.meta!.lastModified) headers['if-modified-since'] = s.meta!.lastModified;
    let body: Buffer;
    let response: Response;
    try {
      response = await fetch(line.url, { headers, signal: AbortSignal.timeout(this.options.timeoutMs), redirect: 'follow' });
      if (response.status === 304 && s.meta !== null) {
        s.writeMeta({ ...s.meta, checkedAt: this.clock() });
        this.log.debug({ bundle: line.bundle, url: line.url }, `list-url ${line.bundle}: not modified`);
        return { bundle: line.bundle, url: line.url, outcome: 'unchanged', rules: s.meta.rules };
      }
      if (response.status !== 200) {
        void response.body?.cancel();
        return kept('failed', `HTTP ${response.status} from ${new URL(line.url).host}`);
      }
      const length = Number(response.headers.get('content-length') ?? NaN);
      if (length > this.options.maxBytes) {
        void response.body?.cancel();
        return kept('failed', `the list is ${length} bytes, above the ${this.options.maxBytes}-byte cap`);
      }
      body = await readCapped(response, this.options.maxBytes);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const reason = e.name === 'TimeoutError' ? `no answer within ${formatDuration(this.options.timeoutMs)}`
        : e.message === 'too big' ? `the list is above the ${this.options.maxBytes}-byte cap`
          : `cannot fetch (${e.cause?.code ?? e.message})`;
      return kept('failed', reason);
    }
    if (!isUtf8(body)) return kept('garbage', 'the body is not UTF-8 text');
    const text = body.toString('utf8');
    const catalogue = parseCatalogue(text);
    const meta: Meta = {
      url: line.url, checkedAt: this.clock(), rules: 0, kind: catalogue === null ? 'list' : 'catalogue',
      ...(response.headers.get('etag') ? { etag: response.headers.get('etag')! } : {}),
      ...(response.headers.get('last-modified') ? { lastModified: response.headers.get('last-modified')! } : {}),
    };
    const files: { path: string; bytes: Buffer }[] = [];
    let valid = 0;
    let invalid = 0;
    if (catalogue === null) {
      const v = judge(s.listPath, body);
      ({ valid, invalid } = v);
      meta.rules = v.rules;
      files.push({ path: s.listPath, bytes: body });
    } else {
      meta.services = catalogue.map((c) => c.id);
      for (const c of catalogue) {
        const bytes = Buffer.from(`# ${c.name}: service "${c.id}" of ${line.url}\n${c.rules.join('\n')}\n`);
        const path = join(s.cataloguePath, `${c.id}.txt`);
        const v = judge(path, bytes);
        valid += v.valid;
        invalid += v.invalid;
        meta.rules += v.rules;
        files.push({ path, bytes });
      }
    }
    if (valid === 0 || invalid > valid) return kept('garbage', `${invalid} of ${valid + invalid} lines are not rules (an error page?)`);
    if (sameUrl && s.meta!.rules > 0 && meta.rules < s.meta!.rules * 0.1) {
      return kept('shrunk', `the list shrank from ${s.meta!.rules} to ${meta.rules} rules (more than 90%)`);
    }
    // A config reload dropped or replaced this line while it was fetched: what it fetched is not stored.
    if (s.removed) return { bundle: line.bundle, url: line.url, outcome: 'unchanged', rules: s.meta?.rules ?? 0, reason: 'the list-url line changed during the fetch' };
    try {
      if (catalogue !== null) {
        rmSync(`${s.cataloguePath}.new`, { recursive: true, force: true });
        mkdirSync(`${s.cataloguePath}.new`, { recursive: true });
        for (const f of files) writeFileSync(join(`${s.cataloguePath}.new`, f.path.slice(s.cataloguePath.length + 1)), f.bytes);
        rmSync(s.cataloguePath, { recursive: true, force: true });
        renameSync(`${s.cataloguePath}.new`, s.cataloguePath);
        rmSync(s.listPath, { force: true });
      } else {
        writeAtomic(s.listPath, body);
        rmSync(s.cataloguePath, { recursive: true, force: true });
      }
      s.writeMeta(meta);
    } catch (err) {
      return kept('failed', `cannot store it in ${s.dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'error');
    }
    this.log.info({ bundle: line.bundle, url: line.url, rules: meta.rules, services: meta.services?.length },
      catalogue === null ? `list-url ${line.bundle}: ${meta.rules} rules fetched` : `list-url ${line.bundle}: catalogue of ${catalogue.length} services, ${meta.rules} rules fetched`);
    return { bundle: line.bundle, url: line.url, outcome: 'updated', rules: meta.rules };
  }
}

/** The body, refused past `max` bytes without reading the rest. */
async function readCapped(response: Response, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  if (response.body === null) return Buffer.alloc(0);
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw new Error('too big');
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

/** Files left in the lists folder by list-url lines that are gone: for a tidy-up message, not deleted. */
export function orphanedLists(stateDir: string, lines: readonly ListUrlLine[]): string[] {
  const dir = join(stateDir, 'lists');
  const wanted = new Set(lines.map((l) => l.bundle));
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.meta.json') && !wanted.has(n.slice(0, -'.meta.json'.length)));
  } catch {
    return [];
  }
}
