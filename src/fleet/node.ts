// One node of a fleet: what `serve` adds when --redis is given. It connects (waiting a
// moment at most), holds the lease if it is the primary, chooses the folder the policy is
// read from (a replica's state folder), shares the cache, counts the figures, and keeps all
// of that going across Redis outages. Nothing here is on the query path but the figures'
// counting and the cache's write queue.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { StartupError } from '../net/bind-error.js';
import type { Logger } from '../observe/log.js';
import type { MetricsSink } from '../pipeline/metrics.js';
import type { Reloader, ReloadResult } from '../stages/policy/reload.js';
import { FleetFigures, writeHeartbeat } from './figures.js';
import { CHANNELS, KEYS } from './keys.js';
import { acquireLease, refusedMessage, releaseLease, renewLease } from './lease.js';
import { RedisLink } from './link.js';
import { PolicyFollower, PolicyPublisher } from './policy-sync.js';
import { WriteThroughCache } from './shared-cache.js';
import type { PolicySources } from './snapshot.js';
import { PauseState, type Pause, type PauseOrder } from '../stages/policy/pause.js';
import { disableBundle, enableBundle } from '../stages/policy/bundles.js';
import { addToLocalList, listName } from '../admin/list-edit.js';

export interface FleetTiming {
  /** How long startup waits for Redis before serving without it. */
  connectWaitMs: number;
  /** The lease's lifetime; renewed every third of it. A new primary can take over this long after the old one is gone. */
  leaseMs: number;
  heartbeatMs: number;
  /** Hourly counts are added into Redis this often (at most 10 s, so a fleet report is complete within about 20 s). */
  figuresFlushMs: number;
  /** Cache answers are written to Redis in batches this often. */
  cacheFlushMs: number;
  /** A replica reads the version pointer this often besides the notices; the primary checks that Redis still has its snapshot. */
  pollMs: number;
  warmMax: number;
  warmBudgetMs: number;
}

export const DEFAULT_FLEET_TIMING: FleetTiming = {
  connectWaitMs: 1500, leaseMs: 9000, heartbeatMs: 3000, figuresFlushMs: 5000, cacheFlushMs: 100, pollMs: 5000, warmMax: 10_000, warmBudgetMs: 1000,
};

/** What the node needs of the running server, given once the reloader exists. */
/** What the node needs of a reloader: the server's, or (with --workers) one that asks every worker. */
export type FleetReloader = Pick<Reloader, 'trigger' | 'onReload'>;

/** What the node needs of the pause state: the server's PauseState, or (with --workers) one that tells every worker. */
export interface FleetPause {
  readonly file: string | null;
  onOrder: ((order: PauseOrder) => void) | null;
  adopt(pauses: readonly Pause[]): void;
  pauseUntil(group: string, until: number | null): unknown;
  resume(group: string): unknown;
}

export interface FleetHooks {
  reloader: FleetReloader;
  ruleCount(): number;
  upstreamHealthy(): boolean;
  /** The pause state (STATE_DIR/pause.json): the primary publishes it, a replica adopts the primary's and passes its own orders on. */
  pause?: FleetPause | null;
  /** The stored list-url copies (the primary publishes them; a replica fetches none). */
  lists?: () => { dir: string; paths: string[] } | null;
}

/** A change ordered on a replica, carried out by the primary (its folder is the fleet's). */
export type FleetOrder =
  | { cmd: 'reload' }
  | { cmd: 'pause'; group: string; until: number | null }
  | { cmd: 'resume'; group: string }
  | { cmd: 'enable' | 'disable'; bundle: string }
  | { cmd: 'block' | 'allow'; name: string };

const VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/** Reload reasons that a person ordered on this node: they go to the whole fleet. */
const ORDERED = new Set(['SIGHUP', 'admin']);

export class FleetNode {
  readonly link: RedisLink;
  readonly figures: FleetFigures;
  readonly cache: WriteThroughCache;
  readonly role: 'primary' | 'replica';
  /** The folder the policy is read from: the node's own (primary) or its state copy (replica). */
  readonly policyFolder: string;
  /** A replica's copy of the primary's list-url lists (it fetches none itself); null on the primary. */
  readonly followedLists: string | null;
  private readonly publisher: PolicyPublisher | null;
  private readonly follower: PolicyFollower | null;
  private hooks: FleetHooks | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly startedAt = Date.now();
  private leaseHeld = false;
  /** Set when another primary holds the lease: this one stops publishing. */
  refusedBy: string | null = null;
  /** Called when this primary finds another one live (serve exits with status 1). */
  onRefused: (message: string) => void;

  private constructor(private readonly config: Config, private readonly log: Logger, private readonly timing: FleetTiming) {
    this.role = config.fleetRole;
    this.link = new RedisLink({ url: config.redis!, passwordFile: config.redisPasswordFile, ca: config.redisCa }, log);
    this.figures = new FleetFigures(config.nodeName, config.site);
    this.cache = new WriteThroughCache(config.cacheSize);
    this.publisher = this.role === 'primary' ? new PolicyPublisher(this.link, () => this.sources(), config.nodeName, log) : null;
    this.follower = this.role === 'replica'
      ? new PolicyFollower(this.link, config.stateDir, log, async (m) => {
        this.adoptPauses();
        await this.hooks?.reloader.trigger(`fleet policy version ${m.version}`);
        this.log.info({ version: m.version, from: m.node }, `applied fleet policy version ${m.version}`);
      })
      : null;
    this.policyFolder = this.follower?.folder ?? config.blocklists;
    this.followedLists = this.follower?.listsFolder ?? null;
    this.onRefused = (message) => this.log.error(message);
  }

  /** Connects (waiting `connectWaitMs` at most), takes the lease or prepares the replica's folder. Throws StartupError when another primary is live. */
  static async start(config: Config, log: Logger, timing: Partial<FleetTiming> = {}, forWorkers = false): Promise<FleetNode> {
    const node = new FleetNode(config, log, { ...DEFAULT_FLEET_TIMING, ...timing });
    // With --workers this node lives in the primary process: the workers hold the caches.
    node.cache.keepInMemory = !forWorkers;
    try {
      await node.begin();
    } catch (err) {
      await node.link.close();
      throw err;
    }
    return node;
  }

  private async begin(): Promise<void> {
    const connected = await this.link.start(this.timing.connectWaitMs);
    if (this.role === 'primary') {
      if (connected) {
        const message = await this.takeLease();
        if (message !== null) throw new StartupError(message);
      }
    } else {
      const f = this.follower!;
      const hadCopy = await f.load();
      if (connected) await withTimeout(f.check(), 2000);
      if (f.applied === null) {
        await f.seed(this.config.blocklists);
        this.log.warn({ folder: this.config.blocklists }, `no fleet policy applied yet: serving a copy of ${this.config.blocklists} until the primary's arrives`);
      } else if (!hadCopy || connected) {
        this.log.info({ version: f.applied.version }, `fleet policy version ${f.applied.version}`);
      } else {
        this.log.info({ version: f.applied.version }, `serving the last applied fleet policy, version ${f.applied.version}, until Redis answers`);
      }
      this.log.info({ folder: this.config.blocklists, following: f.folder },
        `replica: following the fleet's primary; the own blocklist folder ${this.config.blocklists} is ignored (the policy is read from ${f.folder})`);
    }
    if (connected) await this.cache.warm(this.link, Math.min(this.timing.warmMax, this.config.cacheSize), this.timing.warmBudgetMs);
    if (this.cache.warmed > 0) this.log.info({ answers: this.cache.warmed }, `cache warmed with ${this.cache.warmed} answers from the fleet`);
  }

  /** With --workers, once every worker is ready: their caches are warmed through `send` (see WriteThroughCache.warmWorkers). */
  async warmWorkers(send: (batch: Buffer) => void): Promise<void> {
    const answers = await this.cache.warmWorkers(this.link, Math.min(this.timing.warmMax, this.config.cacheSize), this.timing.warmBudgetMs, send);
    if (answers > 0) this.log.info({ answers }, `the workers' caches warmed with ${answers} answers from the fleet`);
  }

  /** null when the lease is held; else the message naming the live primary. */
  private async takeLease(): Promise<string | null> {
    const r = await acquireLease(this.link, this.config.nodeName, this.timing.leaseMs);
    if (r.held) {
      if (!this.leaseHeld) this.log.info({ node: this.config.nodeName }, 'holding the fleet primary lease');
      this.leaseHeld = true;
      this.refusedBy = null;
      return null;
    }
    this.leaseHeld = false;
    this.refusedBy = r.holder;
    return refusedMessage(this.config.nodeName, r.holder, r.expiresInMs);
  }

  /** Starts the shared work once the server runs: subscriptions, timers, the first publication. */
  async attach(hooks: FleetHooks): Promise<void> {
    this.hooks = hooks;
    const previous = hooks.reloader.onReload;
    hooks.reloader.onReload = (r) => {
      previous?.(r);
      this.reloaded(r);
    };
    await this.cache.share(this.link, this.timing.cacheFlushMs, this.config.nodeName);
    // The version applied while starting (before the pause state existed) brings its pauses.
    if (this.follower?.applied) this.adoptPauses();
    if (hooks.pause) {
      // The primary publishes a pause at once; a replica applies it here and passes it on.
      hooks.pause.onOrder = this.publisher !== null
        ? () => void this.publisher!.publish()
        : (o) => void this.order(o.op === 'pause' ? { cmd: 'pause', group: o.group, until: o.until } : { cmd: 'resume', group: o.group }, 0);
    }
    if (this.publisher !== null) {
      await this.link.subscribe(CHANNELS.command, (message) => this.command(message)).catch(() => undefined);
    } else {
      await this.link.subscribe(CHANNELS.policy, (message) => void this.noticed(message)).catch(() => undefined);
    }
    this.link.onReady(() => void this.catchUp());
    this.every(this.timing.pollMs, () => this.catchUp());
    this.every(this.timing.leaseMs / 3, () => this.renew());
    this.every(this.timing.heartbeatMs, () => this.heartbeat());
    this.every(this.timing.figuresFlushMs, () => this.figures.flush(this.link));
    await this.catchUp();
    await this.heartbeat();
  }

  /** A replica's notice: a new version, or ("N reload") a reload ordered somewhere in the fleet. */
  private async noticed(message: string): Promise<void> {
    const before = this.policyVersion;
    await this.follower!.check();
    if (message.endsWith(' reload') && this.policyVersion === before) await this.hooks?.reloader.trigger('fleet reload');
  }

  /** What the primary publishes: its folder (with available/), its stored subscriptions, its pauses. */
  private sources(): PolicySources {
    return {
      blocklists: this.config.blocklists,
      lists: this.hooks?.lists?.() ?? undefined,
      pauseFile: this.hooks?.pause?.file ?? null,
    };
  }

  /** A replica takes the primary's pauses (none when the snapshot has no pause file). */
  private adoptPauses(): void {
    const pause = this.hooks?.pause;
    if (!pause) return;
    let text: string | null = null;
    try {
      text = readFileSync(this.follower!.pauseFile, 'utf8');
    } catch {
      text = null;
    }
    pause.adopt(text === null ? [] : (PauseState.parse(text) ?? []));
  }

  /**
   * A change ordered on a replica goes to the primary, which carries it out and publishes.
   * Waits up to `waitMs` for the next policy version; says whether it came (or why not sent).
   */
  async order(o: FleetOrder, waitMs = 3000): Promise<{ sentTo: string; policyVersion: number; applied: boolean } | { error: string }> {
    if (this.role === 'primary') return { error: 'this node is the primary' };
    if (!this.link.connected) return { error: 'Redis is not reachable: the order cannot reach the fleet\'s primary; try again when it is back' };
    const before = this.policyVersion;
    const primary = (await this.link.send<string | null>(['GET', KEYS.lease]).catch(() => null)) ?? 'the primary';
    const heard = await this.link.send<number>(['PUBLISH', CHANNELS.command, JSON.stringify({ ...o, from: this.config.nodeName })]).catch(() => 0);
    if (heard === 0) return { error: `no primary listens on the fleet's Redis (lease holder: ${primary}); start one, or run the order there` };
    const until = Date.now() + waitMs;
    while (this.policyVersion === before && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return { sentTo: primary, policyVersion: this.policyVersion, applied: this.policyVersion !== before };
  }

  private every(ms: number, job: () => Promise<unknown>): void {
    const t = setInterval(() => void job().catch(() => undefined), ms);
    t.unref();
    this.timers.push(t);
  }

  /** After a reconnection or on the poll: get level with the fleet. */
  private async catchUp(): Promise<void> {
    if (!this.link.connected) return;
    if (this.publisher !== null) {
      if (!this.leaseHeld && !(await this.leaseOrRefuse())) return;
      await this.publisher.publish();
    } else {
      await this.follower!.check();
    }
  }

  private async leaseOrRefuse(): Promise<boolean> {
    const message = await this.takeLease();
    if (message === null) return true;
    this.onRefused(message);
    return false;
  }

  private async renew(): Promise<void> {
    if (this.publisher === null || !this.link.connected || !this.leaseHeld) return;
    if (await renewLease(this.link, this.config.nodeName, this.timing.leaseMs)) return;
    // Expired while Redis was away (take it again), or taken by another node (stop publishing).
    this.leaseHeld = false;
    await this.leaseOrRefuse();
  }

  private async heartbeat(): Promise<void> {
    if (!this.link.connected) return;
    await writeHeartbeat(this.link, {
      node: this.config.nodeName, site: this.config.site, role: this.role, version: VERSION, startedAt: this.startedAt, at: Date.now(),
      policyVersion: this.policyVersion, rules: this.hooks?.ruleCount() ?? 0, queries: this.figures.queries, blocked: this.figures.blocked,
      upstreamHealthy: this.hooks?.upstreamHealthy() ?? false, connected: true, heartbeatMs: this.timing.heartbeatMs,
    });
  }

  /** The reloader reloaded: a primary publishes; a reload ordered on a replica goes to the primary. */
  private reloaded(r: ReloadResult): void {
    if (this.publisher !== null) {
      if (this.leaseHeld) void this.publisher.publish(ORDERED.has(r.reason) || r.reason.startsWith('fleet reload'));
      return;
    }
    if (ORDERED.has(r.reason) && this.link.connected) {
      void this.link.send(['PUBLISH', CHANNELS.command, JSON.stringify({ cmd: 'reload', from: this.config.nodeName })]).catch(() => undefined);
    }
  }

  /** A command from another node (only the primary listens). Only data: every field is checked. */
  private command(message: string): void {
    let c: Record<string, unknown>;
    try {
      c = JSON.parse(message) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof c !== 'object' || c === null || typeof c.from !== 'string') return;
    const from = c.from.slice(0, 64);
    const name = (v: unknown): string | null => (typeof v === 'string' && /^[A-Za-z0-9*][A-Za-z0-9._*-]{0,252}$/.test(v) ? v : null);
    const pause = this.hooks?.pause;
    try {
      if (c.cmd === 'reload') {
        this.log.info({ from }, `reload ordered by fleet node ${from}`);
        void this.hooks?.reloader.trigger(`fleet reload from ${from}`);
      } else if ((c.cmd === 'pause' || c.cmd === 'resume') && pause && name(c.group) !== null) {
        if (c.cmd === 'pause' && (c.until === null || (typeof c.until === 'number' && Number.isFinite(c.until)))) pause.pauseUntil(c.group as string, c.until as number | null);
        else if (c.cmd === 'resume') pause.resume(c.group as string);
        else return;
        this.log.info({ from, group: c.group }, `${String(c.cmd)} ordered by fleet node ${from}`);
      } else if ((c.cmd === 'enable' || c.cmd === 'disable') && name(c.bundle) !== null) {
        const done = c.cmd === 'enable' ? enableBundle(this.config.blocklists, c.bundle as string) : disableBundle(this.config.blocklists, c.bundle as string);
        this.log.info({ from }, `${done} (ordered by fleet node ${from})`);
        void this.hooks?.reloader.trigger(`fleet ${String(c.cmd)} from ${from}`);
      } else if ((c.cmd === 'block' || c.cmd === 'allow') && typeof c.name === 'string') {
        const listed = listName(c.name);
        if (typeof listed !== 'string') return;
        addToLocalList(this.config.blocklists, c.cmd, listed);
        this.log.info({ from, name: listed }, `${c.cmd} ${listed} ordered by fleet node ${from}`);
        void this.hooks?.reloader.trigger(`fleet ${c.cmd} from ${from}`);
      }
    } catch (err) {
      this.log.warn({ from, reason: (err as Error).message }, `fleet order from ${from} not carried out: ${(err as Error).message}`);
    }
  }

  /** The policy version this node runs (0: none from the fleet yet). */
  get policyVersion(): number {
    return (this.publisher !== null ? this.publisher.current?.version : this.follower!.applied?.version) ?? 0;
  }

  /** Writes what is waiting (figures, cache answers) now: tests and shutdown. */
  async flush(): Promise<void> {
    await this.figures.flush(this.link);
    await this.cache.flush();
  }

  collect(sink: MetricsSink): void {
    sink.add('sinkhole_fleet_connected', 'gauge', 'Whether this node is connected to the fleet\'s Redis (1) or not (0).', this.link.connected ? 1 : 0, 'min');
    sink.add('sinkhole_fleet_policy_version', 'gauge', 'The fleet policy version this node runs (0: none from the fleet yet).', this.policyVersion, 'first');
    sink.add('sinkhole_fleet_primary', 'gauge', 'Whether this node holds the primary lease.', this.leaseHeld ? 1 : 0, 'max');
    sink.add('sinkhole_fleet_cache_written_total', 'counter', 'Answers written to the shared cache.', this.cache.written);
    sink.add('sinkhole_fleet_cache_received_total', 'counter', 'Answers taken into this node\'s cache from other nodes\' batches.', this.cache.received);
    sink.add('sinkhole_fleet_cache_dropped_total', 'counter', 'Answers not written to the shared cache (queue full while Redis was away).', this.cache.dropped);
    sink.add('sinkhole_fleet_policy_rejected_total', 'counter', 'Fleet policy snapshots rejected (missing or corrupt files).', this.follower?.rejected ?? 0);
  }

  /** For /healthz. */
  health(): Record<string, unknown> {
    return {
      fleet: {
        node: this.config.nodeName, site: this.config.site, role: this.role, connected: this.link.connected, policyVersion: this.policyVersion,
        ...(this.role === 'primary' ? { leaseHeld: this.leaseHeld } : {}), ...(this.refusedBy === null ? {} : { refusedBy: this.refusedBy }),
      },
    };
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.cache.close();
    if (this.link.connected) {
      await this.flush().catch(() => undefined);
      if (this.leaseHeld) await releaseLease(this.link, this.config.nodeName).catch(() => undefined);
    }
    await this.link.close();
  }
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    void p.finally(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

