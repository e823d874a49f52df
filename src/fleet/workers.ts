// A fleet node with --workers N: one Redis link for the whole node, in the primary process
// (FleetSupervisor), and N workers that answer queries and never talk to Redis
// (FleetWorker). Over node:cluster's channel (advanced serialization, so buffers pass):
//   worker -> primary: its hourly counts and rule count (every figures flush), its cache
//     batches (every cache flush), each reload it did (the primary publishes, or passes an
//     ordered reload on to the fleet's primary);
//   primary -> workers: reload, the fleet's pauses, a pause or resume ordered elsewhere, the
//     cache batches of other nodes and of sibling workers.
// The workers read the policy from the node's policy folder (a replica's: STATE_DIR/fleet/,
// written by the primary process) and the pauses from STATE_DIR/pause.json, so a worker that
// restarts is in step before it answers.
import cluster, { type Worker } from 'node:cluster';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/config.js';
import type { Logger } from '../observe/log.js';
import type { MetricsSink } from '../pipeline/metrics.js';
import type { PauseOrder, Pause, PauseState } from '../stages/policy/pause.js';
import type { Reloader, ReloadResult } from '../stages/policy/reload.js';
import { Subscriptions } from '../stages/policy/sources/subscription.js';
import { FleetFigures } from './figures.js';
import { DEFAULT_FLEET_TIMING, FleetNode, type FleetPause, type FleetReloader, type FleetTiming } from './node.js';
import { WriteThroughCache } from './shared-cache.js';

type ToWorker =
  | { sinkhole: 'fleet'; op: 'reload'; reason: string }
  | { sinkhole: 'fleet'; op: 'adopt-pauses'; pauses: Pause[] }
  | { sinkhole: 'fleet'; op: 'pause'; group: string; until: number | null }
  | { sinkhole: 'fleet'; op: 'resume'; group: string }
  | { sinkhole: 'fleet'; op: 'cache'; batch: Buffer };

type ToPrimary =
  | { sinkhole: 'fleet'; op: 'figures'; hours: [string, [string, number][]][]; rules: number; upstreamHealthy: boolean }
  | { sinkhole: 'fleet'; op: 'cache'; batch: Buffer }
  | { sinkhole: 'fleet'; op: 'reloaded'; reason: string; ok: boolean; ms: number }
  | { sinkhole: 'fleet'; op: 'pause-applied'; order: PauseOrder };

/** Reloads ordered on the node arrive once per worker: the same reason within this long is one reload. */
const SAME_RELOAD_MS = 1000;
const ORDERED_RELOAD = /^(SIGHUP|admin|fleet reload)/;

/** In a worker: what `serve` uses instead of a FleetNode. */
export class FleetWorker {
  readonly role: 'primary' | 'replica';
  readonly policyFolder: string;
  readonly followedLists: string | null;
  readonly cache: WriteThroughCache;
  readonly figures: FleetFigures;
  private readonly timing: FleetTiming;
  private timer: NodeJS.Timeout | null = null;
  private hooks: { reloader: Reloader; pause: PauseState | null; ruleCount(): number; upstreamHealthy(): boolean } | null = null;
  private readonly listener = (m: ToWorker): void => this.message(m);

  constructor(private readonly config: Config, timing: Partial<FleetTiming> = {}) {
    this.timing = { ...DEFAULT_FLEET_TIMING, ...timing };
    this.role = config.fleetRole;
    const fleetDir = join(config.stateDir, 'fleet');
    this.policyFolder = this.role === 'replica' ? join(fleetDir, 'blocklists') : config.blocklists;
    this.followedLists = this.role === 'replica' ? join(fleetDir, 'lists') : null;
    this.cache = new WriteThroughCache(config.cacheSize);
    this.figures = new FleetFigures(config.nodeName, config.site);
  }

  attach(hooks: NonNullable<FleetWorker['hooks']>): void {
    this.hooks = hooks;
    const previous = hooks.reloader.onReload;
    hooks.reloader.onReload = (r) => {
      previous?.(r);
      send({ sinkhole: 'fleet', op: 'reloaded', reason: r.reason, ok: r.ok, ms: r.ms });
    };
    this.cache.relay((batch) => send({ sinkhole: 'fleet', op: 'cache', batch }), this.timing.cacheFlushMs, this.config.nodeName);
    process.on('message', this.listener);
    this.timer = setInterval(() => this.sendFigures(), Math.min(this.timing.figuresFlushMs, 1000));
    this.timer.unref();
  }

  private sendFigures(): void {
    if (this.hooks === null) return;
    send({ sinkhole: 'fleet', op: 'figures', hours: this.figures.drain(), rules: this.hooks.ruleCount(), upstreamHealthy: this.hooks.upstreamHealthy() });
  }

  private message(m: ToWorker): void {
    if (m?.sinkhole !== 'fleet' || this.hooks === null) return;
    const pause = this.hooks.pause;
    if (m.op === 'reload') void this.hooks.reloader.trigger(m.reason);
    else if (m.op === 'adopt-pauses') pause?.adopt(m.pauses);
    else if (m.op === 'pause') {
      pause?.pauseUntil(m.group, m.until);
      send({ sinkhole: 'fleet', op: 'pause-applied', order: { op: 'pause', group: m.group, until: m.until } });
    } else if (m.op === 'resume') {
      pause?.resume(m.group);
      send({ sinkhole: 'fleet', op: 'pause-applied', order: { op: 'resume', group: m.group } });
    }
    else if (m.op === 'cache') this.cache.takeBatch(Buffer.from(m.batch));
  }

  collect(_sink: MetricsSink): void {
    // The fleet's figures are the primary process's (it holds the link).
  }

  health(): Record<string, unknown> {
    return {};
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.cache.flush();
    this.sendFigures();
    this.cache.close();
    process.off('message', this.listener);
  }
}

function send(m: ToPrimary): void {
  if (process.connected) process.send?.(m);
}

/** In the primary process: the node's one Redis link, for every worker. */
export class FleetSupervisor {
  private rules = 0;
  private upstreamHealthy = false;
  private readonly lastReload = new Map<string, number>();
  readonly reloader: FleetReloader;
  readonly pause: ClusterPause;

  private constructor(readonly node: FleetNode, config: Config) {
    this.reloader = {
      onReload: null,
      trigger: (reason: string) => {
        broadcast({ sinkhole: 'fleet', op: 'reload', reason });
        return Promise.resolve();
      },
    };
    this.pause = new ClusterPause(config.policy.stateDir === null ? null : join(config.policy.stateDir, 'pause.json'));
  }

  /** Before the workers are forked: connect, take the lease or fill the replica's folder (throws StartupError like a single process). */
  static async start(config: Config, log: Logger, timing: Partial<FleetTiming> = {}): Promise<FleetSupervisor> {
    const s = new FleetSupervisor(await FleetNode.start(config, log, timing, true), config);
    cluster.on('message', (worker, m: ToPrimary) => s.message(worker, m));
    s.node.cache.onBatch = (batch) => broadcast({ sinkhole: 'fleet', op: 'cache', batch });
    await s.node.attach({
      reloader: s.reloader, pause: s.pause, ruleCount: () => s.rules, upstreamHealthy: () => s.upstreamHealthy,
      lists: () => (config.policy.listUrls.length === 0 || config.policy.stateDir === null ? null
        : { dir: join(config.policy.stateDir, 'lists'), paths: new Subscriptions(config.policy.listUrls, { stateDir: config.policy.stateDir }, log).lists().map((l) => l.path) }),
    });
    return s;
  }

  private message(worker: Worker, m: ToPrimary): void {
    if (m?.sinkhole !== 'fleet') return;
    if (m.op === 'figures') {
      this.node.figures.absorb(m.hours);
      this.rules = m.rules;
      this.upstreamHealthy = m.upstreamHealthy;
    } else if (m.op === 'cache') {
      const batch = Buffer.from(m.batch);
      this.node.cache.queueBatch(batch);
      broadcast({ sinkhole: 'fleet', op: 'cache', batch }, worker);
    } else if (m.op === 'reloaded') {
      // Every worker reloads for one order: the node reports an ordered reload once (it makes
      // the whole fleet reload). Other reloads (the folder changed) always count: publishing
      // an unchanged folder costs one GET.
      const now = Date.now();
      if (ORDERED_RELOAD.test(m.reason)) {
        if (now - (this.lastReload.get(m.reason) ?? 0) < SAME_RELOAD_MS) return;
        this.lastReload.set(m.reason, now);
      }
      this.reloader.onReload?.({ reason: m.reason, ok: m.ok, ms: m.ms } satisfies ReloadResult);
    } else if (m.op === 'pause-applied') {
      // A worker wrote pause.json: the primary publishes it (the next workers' acks find it unchanged).
      this.pause.onOrder?.(m.order);
    }
  }

  /** Every worker is ready: each starts with an empty cache, warmed now from the fleet's (as a single process warms before it answers). */
  warmWorkers(): Promise<void> {
    return this.node.warmWorkers((batch) => broadcast({ sinkhole: 'fleet', op: 'cache', batch }));
  }

  /** A pause or resume the admin API carried out on every worker: the fleet hears it once. */
  ordered(order: PauseOrder): void {
    this.pause.onOrder?.(order);
  }

  async close(): Promise<void> {
    await this.node.close();
  }
}

/** The pause state of --workers as the fleet node sees it: every worker keeps a PauseState (same file); this tells them all. */
class ClusterPause implements FleetPause {
  onOrder: ((order: PauseOrder) => void) | null = null;
  constructor(readonly file: string | null) {}
  /** Written here too, so that a worker started later (or restarted) reads them from the file. */
  adopt(pauses: readonly Pause[]): void {
    if (this.file !== null) {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(`${this.file}.tmp`, `${JSON.stringify({ version: 1, pauses })}\n`);
      renameSync(`${this.file}.tmp`, this.file);
    }
    broadcast({ sinkhole: 'fleet', op: 'adopt-pauses', pauses: [...pauses] });
  }
  /** Ordered by another node: every worker applies it and writes the file, then says so ('pause-applied'), and the primary publishes. */
  pauseUntil(group: string, until: number | null): void {
    broadcast({ sinkhole: 'fleet', op: 'pause', group, until });
  }
  resume(group: string): void {
    broadcast({ sinkhole: 'fleet', op: 'resume', group });
  }
}

function broadcast(m: ToWorker, except?: Worker): void {
  for (const w of Object.values(cluster.workers ?? {})) if (w !== undefined && w !== except && w.isConnected()) w.send(m);
}
