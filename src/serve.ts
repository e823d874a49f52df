// `sinkhole serve`: load the rules, bind every listen address (UDP and TCP), answer until a
// signal. Startup is all-or-nothing: the server says "ready" only when rules are loaded and
// every socket is bound, and a failure stops it with one line.
import { AnswerCache } from './cache.js';
import type { Config } from './config.js';
import { BlockedQueryLog, createLogger, type Logger, type LogOutput } from './log.js';
import { collectStartupGarbage } from './memory.js';
import { NetworkList } from './policy/cidr.js';
import type { ListFile } from './policy/list-file.js';
import { loadBlocklists, type LoadReport } from './policy/load.js';
import { Resolver } from './resolver.js';
import { StartupError } from './server/bind-error.js';
import { listenTcp, type TcpListener } from './server/tcp.js';
import { listenUdp, type UdpListener } from './server/udp.js';
import type { Transport } from './transport.js';
import { Forwarder } from './upstream/forwarder.js';
import { buildTemplates } from './wire/answer.js';
import { isWorker, reportReady, runPrimary } from './workers.js';

/** Upper bound on one client query's wait for upstreams, whatever the number of upstreams. */
const FORWARD_BUDGET_MS = 4000;

export interface RunningServer {
  resolver: Resolver;
  udp: UdpListener[];
  tcp: TcpListener[];
  reload(reason: string): Promise<void>;
  stop(): Promise<void>;
}

/** Logs what a load found: one line per newly read file, one per skipped line, one per failure. */
export function logLoad(log: Logger, report: LoadReport): void {
  for (const file of report.parsed) {
    for (const bad of file.invalid) {
      log.warn({ where: `${file.path}:${bad.line}`, text: bad.text, reason: bad.reason }, `invalid rule skipped: ${file.path}:${bad.line}`);
    }
    if (file.invalidCount > file.invalid.length) {
      log.warn({ file: file.path, more: file.invalidCount - file.invalid.length }, 'more invalid rules skipped in this file, not listed');
    }
  }
  for (const f of report.failed) {
    log.error({ file: f.path, reason: f.reason }, f.keptPrevious
      ? `cannot read ${f.path} (${f.reason}); keeping its previous rules`
      : `cannot read ${f.path} (${f.reason}); its rules are not loaded`);
  }
}

export async function startServer(config: Config, output: LogOutput): Promise<RunningServer> {
  const { log } = output;
  let report = await loadBlocklists(config.blocklists);
  logLoad(log, report);
  const ruleSet = report.ruleSet;
  log.info({
    folder: config.blocklists,
    files: ruleSet.files.map((f) => ({ file: f.path, rules: f.keys.length + f.ipRules.length, invalid: f.invalidCount })),
    rules: ruleSet.nameRuleCount + ruleSet.ipRuleCount, names: ruleSet.uniqueNames, ms: report.ms,
  }, `loaded ${ruleSet.nameRuleCount + ruleSet.ipRuleCount} rules from ${ruleSet.files.length} files in ${report.ms} ms`);
  if (ruleSet.files.length === 0) log.warn({ folder: config.blocklists }, 'no *.txt files in the blocklist folder: nothing will be blocked');
  if (ruleSet.nameRuleCount > 100_000) collectStartupGarbage();

  const forwarder = new Forwarder({ upstreams: config.upstreams, timeoutMs: config.upstreamTimeoutMs, budgetMs: FORWARD_BUDGET_MS },
    (err) => log.warn({ err: err.message }, 'upstream socket error'));
  const resolver = new Resolver({
    rules: ruleSet,
    cache: new AnswerCache({ size: config.cacheSize, minTtl: config.cacheMinTtl, maxTtl: config.cacheMaxTtl, servfailTtl: config.servfailTtl }),
    forwarder,
    templates: buildTemplates(config.sinkholeIpv4, config.sinkholeIpv6, config.blockedTtl),
    log,
    blockedLog: new BlockedQueryLog(log),
    allowNets: config.allowNets === null ? null : new NetworkList(config.allowNets),
    exemptClients: config.exemptClients.length === 0 ? null : new NetworkList(config.exemptClients),
  });
  if (config.allowNets === null) log.warn('allow-net any: every client on every network gets answers (an open resolver)');

  let handlerErrors = 0;
  const handle = (msg: Buffer, address: string, port: number, transport: Transport): void => {
    try {
      resolver.handle(msg, address, port, transport);
    } catch (err) {
      // A packet must never take the server down; say so, but not once per packet.
      if (handlerErrors++ % 1000 === 0) log.error({ err: (err as Error).stack, client: address }, 'error while answering a query');
    }
  };

  const udp: UdpListener[] = [];
  const tcp: TcpListener[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all([...udp.map((l) => l.close()), ...tcp.map((l) => l.close())]);
    forwarder.close();
  };
  try {
    for (const endpoint of config.listen) {
      try {
        udp.push(await listenUdp(endpoint, handle, (err) => log.warn({ err: err.message }, 'UDP socket error')));
        tcp.push(await listenTcp(endpoint, handle, { idleTimeoutMs: config.tcpIdleTimeoutMs, maxConnections: config.tcpMaxConnections }));
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
  } catch (err) {
    await closeAll();
    throw err;
  }

  let reloading: Promise<void> | null = null;
  const reload = async (reason: string): Promise<void> => {
    // One reload at a time; a request during a reload is served by the reload that follows it.
    while (reloading !== null) await reloading;
    reloading = (async () => {
      const previous = new Map<string, ListFile>(resolver.rules.files.map((f) => [f.path, f]));
      try {
        report = await loadBlocklists(config.blocklists, previous);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'reload failed; keeping the current rules');
        return;
      }
      logLoad(log, report);
      const before = resolver.rules;
      resolver.rules = report.ruleSet;
      log.info({ reason, files: report.ruleSet.files.length, read: report.parsed.length, reused: report.reused,
        failed: report.failed.length, rules: report.ruleSet.nameRuleCount + report.ruleSet.ipRuleCount,
        before: before.nameRuleCount + before.ipRuleCount, ms: report.ms }, 'blocklists reloaded');
    })();
    try {
      await reloading;
    } finally {
      reloading = null;
    }
  };

  const stop = async (): Promise<void> => {
    for (const l of [...udp, ...tcp]) l.draining = true;
    // Answer what is in flight (bounded by the forward budget), then close.
    const until = Date.now() + FORWARD_BUDGET_MS + 500;
    while (resolver.pending > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await closeAll();
  };

  return { resolver, udp, tcp, reload, stop };
}

export async function serve(config: Config): Promise<void> {
  const output = createLogger(config.logLevel);
  const { log } = output;
  if (config.workers > 1 && !isWorker) {
    runPrimary(config.workers, log, output.flush, () => undefined);
    return;
  }
  const server = await startServer(config, output).catch((err: unknown) => {
    output.flush();
    throw err;
  });
  log.info({
    listen: [...new Set(server.udp.map((l) => l.endpoint.label))],
    upstreams: config.upstreams.map((u) => u.label), upstreamSource: config.upstreamSource,
    allowNets: config.allowNets === null ? 'any' : config.allowNets.map((c) => c.text),
  }, 'ready');
  reportReady();

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
  process.on('SIGHUP', () => {
    output.reopen();
    void server.reload('SIGHUP');
  });
}
