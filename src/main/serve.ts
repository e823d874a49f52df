// `sinkhole serve`: load the rules, bind every listen address (UDP and TCP), answer until a
// signal. Startup is all-or-nothing: the server says "ready" only when rules are loaded and
// every socket is bound, and a failure stops it with one line.
import { answerAdminRequests, clusterBackend } from '../admin/cluster.js';
import { localBackend, type ConfigReload } from '../admin/backend.js';
import { startAdmin } from '../admin/http.js';
import { SERVER_OPTIONS, type Config } from '../config/config.js';
import { listenTcp, type TcpListener } from '../net/tcp.js';
import { listenUdpPreferBatched, loadBatchUdp, type AnyUdpListener } from '../net/batch-udp.js';
import { listenTls, TlsListener } from '../net/tls.js';
import { collectStreamListeners, collectUdpListeners } from '../net/metrics.js';
import { listenHttps, type HttpsListener } from '../net/https.js';
import { StartupError } from '../net/bind-error.js';
import { FleetNode, type FleetOrder, type FleetTiming } from '../fleet/node.js';
import { readFleetView } from '../fleet/view.js';
import { FleetSupervisor, FleetWorker } from '../fleet/workers.js';
import { BlockedQueryLog } from '../observe/blocked-log.js';
import { ClientNames } from '../observe/client-names.js';
import type { QueryObserver } from '../observe/event.js';
import { createLogger, type LogOutput } from '../observe/log.js';
import { QueryLog } from '../observe/query-log.js';
import { QueryStats } from '../observe/stats.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { AnswerCache } from '../stages/cache/answer-cache.js';
import { CacheStage } from '../stages/cache/stage.js';
import { Forwarder, type UpstreamTarget } from '../stages/forward/forwarder.js';
import { ForwardStage } from '../stages/forward/stage.js';
import { upstreamBuilder, type UpstreamBuilder, type UpstreamSetup } from '../stages/forward/upstreams.js';
import { RateLimiter } from '../stages/guard/rate-limit.js';
import { GuardStage } from '../stages/guard/stage.js';
import { privateZoneMap } from '../stages/local/private-zones.js';
import { HostsSource, namesTable } from '../stages/local/hosts.js';
import { LocalStage } from '../stages/local/stage.js';
import { NetworkList, type Cidr } from '../stages/policy/cidr.js';
import { emptyPolicySettings, GroupRuntime, requireClientNames, type PolicySettings } from '../stages/policy/group-setup.js';
import { loadBlocklists } from '../stages/policy/load.js';
import { Policy } from '../stages/policy/policy.js';
import { ReloadFigures } from '../stages/policy/reload-figures.js';
import { DEFAULT_RELOAD_OPTIONS, logLoadProblems, Reloader, type ReloadOptions } from '../stages/policy/reload.js';
import { PolicyStage } from '../stages/policy/stage.js';
import { buildTemplates } from '../wire/answer.js';
import { ZoneMap } from '../wire/zone-map.js';
import { collectStartupGarbage } from './memory.js';
import { isWorker, reportReady, runPrimary } from './workers.js';
import cluster from 'node:cluster';
import type { Logger } from '../observe/log.js';
import { createHistory } from '../observe/history/history.js';
import type { Batch } from '../observe/history/batch.js';
import { WriterThread, type BatchSink } from '../observe/history/writer-thread.js';

/** The history's few lines (never one per query) in the server's log. */
function historyLog(log: Logger): { warn(message: string): void; info(message: string): void } {
  return { warn: (m) => log.warn(m), info: (m) => log.info(m) };
}

/** Upper bound on one client query's wait for upstreams, whatever the number of upstreams. */
const FORWARD_BUDGET_MS = 4000;

export interface RunningServer {
  pipeline: Pipeline;
  policyStage: PolicyStage;
  udp: AnyUdpListener[];
  /** 'batched' (recvmmsg/sendmmsg through the native addon) or 'dgram' (node:dgram). */
  udpMode: 'batched' | 'dgram';
  tcp: TcpListener[];
  /** DoT and DoH listeners (--listen-tls, --listen-https). */
  encrypted: Array<TlsListener | HttpsListener>;
  reloader: Reloader;
  /** Pause state and list subscriptions. */
  groups: GroupRuntime;
  /** The fleet this node belongs to (--redis), or null. */
  fleet: FleetNode | null;
  reload(reason: string): Promise<void>;
  /** SIGHUP: reopens the query log file (logrotate) and re-reads --tls-cert/--tls-key. */
  reopenLogs(): void;
  /**
   * New group, schedule, block/allow lines and exempt clients (a config reload): compiled
   * first, swapped in whole, then the rules reloaded for bundles newly named. A bad line
   * throws ConfigError and leaves the running policy as it was. list-url lines added,
   * removed or changed take effect too (a new list is fetched soon, as at startup). Given
   * `allowNets` (null: any), the allow-net networks are swapped too.
   */
  reconfigure(settings: PolicySettings, exemptClients: Cidr[], allowNets?: Cidr[] | null): Promise<void>;
  /** Reads the config file again (set by `serve` when there is one; tests set it too); null: no file. */
  rereadConfig: (() => Config) | null;
  /**
   * SIGHUP's and POST /reload's work: re-reads the config file and reconfigures, or (no
   * file) reloads the rules. A bad line keeps the running policy; the outcome is logged
   * in one line and returned.
   */
  reloadConfig(reason: string): Promise<ConfigReload | null>;
  stop(): Promise<void>;
}

export async function startServer(config: Config, output: LogOutput, reloadOptions: ReloadOptions = DEFAULT_RELOAD_OPTIONS,
  policySettings: PolicySettings = emptyPolicySettings(), fleetTiming: Partial<FleetTiming> = {}): Promise<RunningServer> {
  const { log } = output;
  // A group member given by name needs client-names: refused before anything is opened.
  requireClientNames(policySettings, config.clientNames.length > 0);
  // Before anything is bound: a query log that cannot be opened stops startup with one line.
  const queryLog = config.queryLog === null ? null : new QueryLog(config.queryLog, config.queryLogMode, log);
  // Client names (DHCP leases, hosts files): shown with clients, usable in group lines.
  const clientNames = config.clientNames.length === 0 ? null : new ClientNames(config.clientNames, log);
  await clientNames?.start();
  // Groups, schedules, pauses and subscriptions; stored subscriptions load with the folder.
  // In a fleet (--redis) a replica reads the policy from its copy of the primary's (src/fleet/).
  // With --workers the primary process holds the Redis link (src/fleet/workers.ts); a worker only relays to it.
  const fleet = config.redis === null || isWorker ? null : await FleetNode.start(config, log, fleetTiming);
  const fleetWorker = config.redis !== null && isWorker ? new FleetWorker(config, fleetTiming) : null;
  const policyFolder = fleet?.policyFolder ?? fleetWorker?.policyFolder ?? config.blocklists;
  const groupRuntime = new GroupRuntime(policySettings, policyFolder, log, {}, fleet?.followedLists ?? fleetWorker?.followedLists ?? null);
  groupRuntime.clientNames = clientNames;
  let report;
  let groupPolicy;
  try {
    report = await loadBlocklists(policyFolder, new Map(), { extra: groupRuntime.extraLists() });
    groupPolicy = groupRuntime.compile();
  } catch (err) {
    groupRuntime.close();
    clientNames?.close();
    await fleet?.close();
    throw err;
  }
  logLoadProblems(log, report);
  const ruleSet = report.ruleSet;
  log.info({
    folder: policyFolder,
    files: ruleSet.files.map((f) => ({ file: f.path, rules: f.keys.length + f.ipRules.length, invalid: f.invalidCount })),
    rules: ruleSet.nameRuleCount + ruleSet.ipRuleCount, names: ruleSet.uniqueNames, ms: report.ms,
  }, `loaded ${ruleSet.nameRuleCount + ruleSet.ipRuleCount} rules from ${ruleSet.files.length} files in ${report.ms} ms`);
  if (ruleSet.files.length === 0) log.warn({ folder: config.blocklists }, 'no *.txt files in the blocklist folder: nothing will be blocked');
  if (ruleSet.nameRuleCount > 100_000) collectStartupGarbage();

  // How much one client may ask: checked by the guard (rate) and the forward stage (queries waiting upstream).
  const limiter = new RateLimiter({
    // --rate-limit 0 turns the rate limits off, the network's too.
    rate: config.rateLimit, burst: config.rateBurst,
    networkRate: config.rateLimit === 0 ? 0 : config.networkRateLimit, networkBurst: config.networkRateLimit * 5,
    maxInflightPerClient: config.maxInflightPerClient, maxInflight: config.maxInflight, exempt: config.rateExempt,
  });
  // The chain, in the order a query meets it.
  const guard = new GuardStage(config.allowNets === null ? null : new NetworkList(config.allowNets), limiter, log);
  const templates = buildTemplates(config.sinkholeIpv4, config.sinkholeIpv6, config.blockedTtl);
  const policyStage = new PolicyStage(
    new Policy(ruleSet, config.exemptClients.length === 0 ? null : new NetworkList(config.exemptClients), groupPolicy), templates);
  const forwarderFor = (upstreams: UpstreamTarget[], zone?: string, timeoutMs = config.upstreamTimeoutMs, portReuse = config.upstreamPortReuse): Forwarder => new Forwarder(
    { upstreams, timeoutMs, budgetMs: FORWARD_BUDGET_MS, portReuse, ...(zone === undefined ? {} : { zone }) },
    (err) => log.warn({ err: err.message }, 'upstream socket error'));
  const setupOf = (c: Config): UpstreamSetup => ({
    upstreamCa: c.upstreamCa, bootstrap: c.bootstrap,
    onFailure: (failure) => log.warn({ reason: failure }, 'encrypted upstream connection failed'),
    onSocketError: (err) => log.warn({ err: err.message }, 'bootstrap socket error'),
  });
  // One CA and one --bootstrap lookup client for the default upstreams and every forward-zone's.
  const upstreams = upstreamBuilder(setupOf(config));
  const forwardZones = config.forwardZones.length === 0 ? null : new ZoneMap<Forwarder>();
  for (const z of config.forwardZones) forwardZones!.set(z.key, forwarderFor(upstreams.build(z.upstreams), z.zone));
  const hosts = config.hostsFiles.length === 0 ? null : new HostsSource(config.hostsFiles, config.localDomain, log);
  await hosts?.start();
  // With local-domain, client names answer as NAME and NAME.DOMAIN (rebuilt when the leases change).
  const localNames = clientNames === null || config.localDomain === null ? null
    : { table: namesTable(clientNames.table.pairs, config.localDomain) };
  if (localNames !== null) clientNames!.onChange = () => { localNames.table = namesTable(clientNames!.table.pairs, config.localDomain!); };
  const local = new LocalStage({
    anyQueries: config.anyQueries, privateZones: config.privateReverse === 'local' ? privateZoneMap() : null,
    forwardZones, hosts, names: localNames, templates,
  });
  const cacheStage = new CacheStage(fleet?.cache ?? fleetWorker?.cache ?? new AnswerCache(config.cacheSize),
    { minTtl: config.cacheMinTtl, maxTtl: config.cacheMaxTtl, servfailTtl: config.servfailTtl, staleMaxAge: config.staleMaxAge });
  // The default upstreams are swapped by a config reload that changes them (with a builder of
  // their own when they differ); replaced ones are closed once their queries are done.
  let upstreamsText = upstreamKey(config);
  let defaultBuilder: UpstreamBuilder | null = null;
  const retired = new Set<() => void>();
  const forwardStage = new ForwardStage(forwarderFor(upstreams.build(config.upstreams)), log, forwardZones, limiter);
  const pipeline = new Pipeline([guard, policyStage, local, cacheStage, forwardStage], log);
  if (config.allowNets === null) log.warn('allow-net any: every client on every network gets answers (an open resolver)');

  const handle = pipeline.handle.bind(pipeline);
  const streamLimits = { idleTimeoutMs: config.tcpIdleTimeoutMs, maxConnections: config.tcpMaxConnections, maxConnectionsPerClient: config.tcpMaxPerClient };
  // Batched UDP (src/net/batch-udp/) where the addon was built at install; node:dgram otherwise.
  const udpLoad = loadBatchUdp();
  if (udpLoad.addon === null) log.info(`${udpLoad.reason}; using node:dgram`);
  const udpMode = udpLoad.addon === null ? 'dgram' : 'batched';
  const udp: AnyUdpListener[] = [];
  const tcp: TcpListener[] = [];
  const encrypted: Array<TlsListener | HttpsListener> = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all([...udp.map((l) => l.close()), ...tcp.map((l) => l.close()), ...encrypted.map((l) => l.close())]);
    clientNames?.close();
    pipeline.close();
    upstreams.close();
    defaultBuilder?.close();
    for (const close of retired) close();
  };
  try {
    for (const endpoint of config.listen) {
      try {
        udp.push((await listenUdpPreferBatched(endpoint, handle, (err) => log.warn({ err: err.message }, 'UDP socket error'), udpLoad,
          { maxWaitMs: config.udpMaxWaitMs })).listener);
        tcp.push(await listenTcp(endpoint, handle, streamLimits));
      } catch (err) {
        // The default [::1] may be missing on a machine without IPv6: serve IPv4 and say so.
        const unavailable = err instanceof StartupError && /no interface|not available/.test(err.message);
        if (config.listenIsDefault && endpoint.family === 6 && unavailable && udp.length > 0) {
          log.warn({ listen: endpoint.label }, `${err.message}; serving IPv4 only`);
          continue;
        }
        throw err;
      }
    }
    // Same handler, same limits as TCP: policy, allow-net and statistics see the client's address.
    const certificate = { cert: config.tlsCert ?? '', key: config.tlsKey ?? '' };
    for (const endpoint of config.listenTls) encrypted.push(await listenTls(endpoint, handle, { ...streamLimits, ...certificate }));
    for (const endpoint of config.listenHttps) encrypted.push(await listenHttps(endpoint, handle, { ...streamLimits, ...certificate }));
  } catch (err) {
    await closeAll();
    groupRuntime.close();
    await fleet?.close();
    throw err;
  }
  groupPolicy.start();

  const reloader = new Reloader(policyFolder, log, () => policyStage.policy.rules, (rules) => {
    policyStage.policy = policyStage.policy.withRules(rules);
  }, reloadOptions);
  reloader.extraLists = () => groupRuntime.extraLists();
  groupRuntime.onListsUpdated = () => void reloader.trigger('list-url');
  await reloader.start();
  groupRuntime.start();
  const reload = (reason: string): Promise<void> => reloader.trigger(reason);

  // Who is told about answered queries.
  const observers: QueryObserver[] = [new BlockedQueryLog(log, undefined, undefined, clientNames)];
  // History (SQLite, written by a thread of its own); with --workers each worker hands its
  // batches to the primary, which owns the one writer.
  const history = createHistory(config.history, {
    days: config.historyDays, stateDir: config.stateDir, log: historyLog(log),
    ...(isWorker ? { sink: workerHistorySink() } : {}),
  });
  if (history !== null) {
    observers.push(history);
    // Stored with each raw row: the client's group as the policy in force sees it.
    history.describeClient = (address) => ({ name: clientNames?.nameOf(address) ?? '', group: policyStage.policy.groupName(address) });
  }
  if (queryLog !== null) {
    queryLog.names = clientNames;
    observers.push(queryLog);
  }
  let admin: import('node:http').Server | null = null;
  if (config.admin !== null) {
    const stats = new QueryStats();
    stats.names = clientNames;
    observers.push(stats);
    const reloads = new ReloadFigures();
    reloads.failedFiles = report.failed.length;
    reloader.onReload = reloads.record;
    const backend = localBackend({
      policyStage, get forwarder() { return forwardStage.forwarder; }, blocklists: policyFolder, guard, fleet, cache: cacheStage.store, stats, reloader, reloads,
      collectors: [pipeline, stats, reloads, ...(history === null ? [] : [history]), ...(fleet === null ? [] : [fleet]), { collect: (sink) => collectStreamListeners(sink, [
        ...tcp.map((l) => ({ label: `tcp://${l.endpoint.label}`, listener: l })),
        ...encrypted.filter((l): l is TlsListener => l instanceof TlsListener).map((l) => ({ label: `tls://${l.endpoint.label}`, listener: l.stream })),
      ]) }, { collect: (sink) => collectUdpListeners(sink, udp) }], groups: groupRuntime, clientNames, reloadConfig: (reason) => running.reloadConfig(reason), sinkholeIpv4: config.sinkholeIpv4, sinkholeIpv6: config.sinkholeIpv6, stateDir: config.stateDir,
      ...(fleet === null ? {} : { fleetView: () => readFleetView(fleet.link) }),
      ...(fleet?.role === 'replica' ? { fleetOrder: (o: FleetOrder) => fleet.order(o) } : {}),
    });
    // With --workers the primary serves the API and asks each worker (admin/cluster.ts).
    if (isWorker) answerAdminRequests(backend);
    else {
      try {
        admin = await startAdmin(config.admin, config.adminToken, backend, config.adminHostnames, (e) => log.info(e, 'admin change'));
      } catch (err) {
        reloader.close();
        groupRuntime.close();
        policyStage.policy.groups?.stop();
        await closeAll();
        await fleet?.close();
        throw err;
      }
      log.info({ admin: config.admin.label, token: config.adminToken !== null }, 'admin API listening');
    }
  }
  if (fleet !== null) {
    observers.push(fleet.figures);
    await fleet.attach({
      reloader, ruleCount: () => policyStage.policy.rules.nameRuleCount + policyStage.policy.rules.ipRuleCount,
      upstreamHealthy: () => forwardStage.forwarder.lastAnswerAt.some((t) => Date.now() - t < 60_000),
      pause: groupRuntime.pause, lists: () => groupRuntime.storedLists(),
    });
  }
  if (fleetWorker !== null) {
    observers.push(fleetWorker.figures);
    fleetWorker.attach({
      reloader, pause: groupRuntime.pause, ruleCount: () => policyStage.policy.rules.nameRuleCount + policyStage.policy.rules.ipRuleCount,
      upstreamHealthy: () => forwardStage.forwarder.lastAnswerAt.some((t) => Date.now() - t < 60_000),
    });
  }
  pipeline.setObservers(observers);

  const stop = async (): Promise<void> => {
    reloader.close();
    groupRuntime.close();
    policyStage.policy.groups?.stop();
    admin?.close();
    admin?.closeAllConnections();
    for (const l of [...udp, ...tcp, ...encrypted]) l.draining = true;
    // Answer what is in flight (bounded by the forward budget), then close.
    const until = Date.now() + FORWARD_BUDGET_MS + 500;
    while (pipeline.pending() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await closeAll();
    queryLog?.flush();
    await history?.close();
    await fleet?.close();
    await fleetWorker?.close();
  };
  const reopenLogs = (): void => {
    queryLog?.reopen();
    // SIGHUP also picks up a renewed certificate; a bad new pair leaves the old one serving.
    for (const l of encrypted) {
      try {
        l.reloadCertificate();
      } catch (err) {
        log.error({ listen: l.endpoint.label }, `${(err as Error).message}; still serving the previous certificate`);
      }
    }
  };
  let allowNetsText = netsText(config.allowNets);
  const reconfigure = async (settings: PolicySettings, exemptClients: Cidr[], allowNets?: Cidr[] | null): Promise<void> => {
    requireClientNames(settings, clientNames !== null);
    const next = groupRuntime.reconfigure(settings);
    const before = policyStage.policy;
    policyStage.policy = before.withGroups(next, exemptClients.length === 0 ? null : new NetworkList(exemptClients));
    next.start();
    before.groups?.stop();
    if (allowNets !== undefined && netsText(allowNets) !== allowNetsText) {
      guard.allowNets = allowNets === null ? null : new NetworkList(allowNets);
      allowNetsText = netsText(allowNets);
      log.info({ allowNets: allowNetsText }, `allow-net now ${allowNetsText}`);
      if (allowNets === null) log.warn('allow-net any: every client on every network gets answers (an open resolver)');
    }
    await reloader.trigger('config');
  };

  const running: RunningServer = {
    pipeline, policyStage, udp, udpMode, tcp, encrypted, reloader, groups: groupRuntime, fleet, reload, reopenLogs, reconfigure, stop,
    rereadConfig: null,
    reloadConfig: async (reason) => {
      const reread = running.rereadConfig;
      if (reread === null) return null;
      try {
        const next = reread();
        // New upstreams are built before anything changes (a bad CA file fails here) and put in force after the policy.
        const key = upstreamKey(next);
        const builder = key === upstreamsText ? null : upstreamBuilder(setupOf(next));
        const forwarder = builder === null ? null : forwarderFor(builder.build(next.upstreams), undefined, next.upstreamTimeoutMs, next.upstreamPortReuse);
        try {
          await reconfigure(next.policy, next.exemptClients, next.allowNets);
        } catch (err) {
          forwarder?.close();
          builder?.close();
          throw err;
        }
        if (forwarder !== null) {
          const before = { forwarder: forwardStage.forwarder, builder: defaultBuilder };
          forwardStage.forwarder = forwarder;
          defaultBuilder = builder;
          upstreamsText = key;
          log.info({ upstreams: next.upstreams.map((u) => u.label) }, `upstreams now ${next.upstreams.map((u) => u.label).join(' ')}`);
          // Queries in flight finish on the old forwarder (bounded by the forward budget); then its sockets close.
          const close = (): void => {
            retired.delete(close);
            clearTimeout(timer);
            before.forwarder.close();
            before.builder?.close();
          };
          const timer = setTimeout(close, FORWARD_BUDGET_MS + 500);
          timer.unref();
          retired.add(close);
        }
        log.info({ reason, groups: next.policy.groups.length, schedules: next.policy.schedules.length, rules: next.policy.rules.length, lists: next.policy.listUrls.length },
          'config reloaded: groups, schedules, block, allow and list-url lines, exempt clients, allow-net, upstreams');
        // Compared with what the server started with: said again at each reload until a restart.
        const restartNeeded = restartOnlyChanges(config, next);
        if (restartNeeded.length > 0) {
          log.warn({ settings: restartNeeded }, `config file: ${restartNeeded.join(', ')} changed; in force at the next restart (systemctl restart sinkhole)`);
        }
        return { reloaded: true, restartNeeded };
      } catch (err) {
        const message = (err as Error).message;
        log.error({ reason: message }, `config reload failed: ${message}; keeping the running policy`);
        return { reloaded: false, error: message };
      }
    },
  };
  return running;
}

/** Settings a reload applies in place (the rest needs a restart). */
const RELOADABLE = new Set(['group', 'schedule', 'block', 'allow', 'list-url', 'exempt-client', 'allow-net', 'config',
  'upstream', 'upstream-timeout', 'upstream-port-reuse', 'resolv-conf', 'upstream-ca', 'bootstrap']);

/** What the default upstreams are built from: a reload rebuilds them when this changes. */
function upstreamKey(c: Config): string {
  return JSON.stringify([c.upstreams, c.upstreamTimeoutMs, c.upstreamPortReuse, c.upstreamCa, c.bootstrap]);
}

/** The settings (option names) whose value differs between the running config and a re-read one and that only a restart applies. */
export function restartOnlyChanges(running: Config, next: Config): string[] {
  const fields = running as unknown as Record<string, unknown>;
  const nextFields = next as unknown as Record<string, unknown>;
  return SERVER_OPTIONS.filter((o) => o.field !== null && !RELOADABLE.has(o.name))
    .filter((o) => JSON.stringify(fields[o.field!]) !== JSON.stringify(nextFields[o.field!]))
    .map((o) => o.name);
}

/** A worker's history batches go to the primary process, which says when its writer is behind. */
function workerHistorySink(): BatchSink {
  let behind = false;
  process.on('message', (m: { sinkhole?: string; behind?: boolean }) => {
    if (m?.sinkhole === 'history-behind') behind = m.behind === true;
  });
  return { write: (batch) => process.send?.({ sinkhole: 'history', batch }), behind: () => behind };
}

function netsText(nets: Cidr[] | null): string {
  return nets === null ? 'any' : nets.map((c) => c.text).join(' ');
}

/** `reread`: the config as the file says now (SIGHUP re-reads it); null when there is no file. */
export async function serve(config: Config, reread: (() => Config) | null = null): Promise<void> {
  const output = createLogger(config.logLevel);
  const { log } = output;
  if (config.workers > 1 && !isWorker) {
    // In a fleet, this process holds the node's one Redis link; the workers follow through it.
    const fleet = config.redis === null ? null : await FleetSupervisor.start(config, log).catch((err: unknown) => {
      output.flush();
      throw err;
    });
    if (fleet !== null) {
      fleet.node.onRefused = (message) => {
        log.error(message);
        output.flush();
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
        process.exitCode = 1;
        setTimeout(() => process.exit(1), 2000).unref();
      };
    }
    if (config.admin !== null) {
      await startAdmin(config.admin, config.adminToken, clusterBackend(config.stateDir, fleet?.node.policyFolder ?? config.blocklists, fleet), config.adminHostnames, (e) => log.info(e, 'admin change')).catch((err: unknown) => {
        output.flush();
        throw err;
      });
      log.info({ admin: config.admin.label, token: config.adminToken !== null, workers: config.workers }, 'admin API listening');
    }
    // The one history writer: the workers send it their batches.
    let writer: WriterThread | null = null;
    // Advanced serialization: history batches and fleet cache batches carry buffers.
    if (config.history !== 'off' || fleet !== null) cluster.setupPrimary({ serialization: 'advanced' });
    if (config.history !== 'off') {
      writer = new WriterThread({ stateDir: config.stateDir, days: config.historyDays, queueLimit: 100_000, retryMs: 30_000 }, historyLog(log));
      // Each worker is told when the writer falls behind or catches up (as a single process's
      // History sees its own thread), so that it sheds raw rows instead of sending them here.
      const told = new WeakMap<object, boolean>();
      cluster.on('message', (worker, m: { sinkhole?: string; batch?: Batch }) => {
        if (m?.sinkhole !== 'history' || m.batch === undefined) return;
        writer!.write(m.batch);
        const behind = writer!.behind();
        if ((told.get(worker) ?? false) !== behind) {
          told.set(worker, behind);
          worker.send({ sinkhole: 'history-behind', behind });
        }
      });
    }
    runPrimary(config.workers, log, output.flush, () => void fleet?.warmWorkers(), async () => {
      await writer?.close();
      await fleet?.close();
    });
    return;
  }
  const server = await startServer(config, output, DEFAULT_RELOAD_OPTIONS, config.policy).catch((err: unknown) => {
    output.flush();
    throw err;
  });
  log.info({
    listen: [...new Set(server.udp.map((l) => l.endpoint.label))], udp: server.udpMode,
    ...(config.listenTls.length > 0 ? { listenTls: config.listenTls.map((e) => e.label) } : {}),
    ...(config.listenHttps.length > 0 ? { listenHttps: config.listenHttps.map((e) => `https://${e.label}/dns-query`) } : {}),
    upstreams: config.upstreams.map((u) => u.label), upstreamSource: config.upstreamSource,
    allowNets: config.allowNets === null ? 'any' : config.allowNets.map((c) => c.text),
  }, 'ready');
  reportReady();
  // A primary that finds another one live once Redis answers leaves (status 1), as at startup.
  if (server.fleet !== null) {
    server.fleet.onRefused = (message) => {
      log.error(message);
      void server.stop().finally(() => {
        output.flush();
        process.exit(1);
      });
    };
  }

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    void server.stop().then(() => {
      log.info('stopped');
      output.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  server.rereadConfig = reread;
  process.on('SIGHUP', () => {
    output.reopen();
    server.reopenLogs();
    // Groups, schedules, block/allow/list-url lines and exempt clients change in place; a bad
    // line keeps the running policy. The rules are reloaded either way.
    void server.reloadConfig('SIGHUP').then((done) => (done?.reloaded === true ? undefined : server.reload('SIGHUP')));
  });
}
