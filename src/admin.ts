// The admin HTTP server: health, Prometheus metrics, reload and "why is this blocked?" over
// HTTP. Off by default; loopback only unless a bearer token is configured, and with a
// token every request must carry it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AnswerCache } from './cache.js';
import type { Config } from './config.js';
import type { NetworkList } from './policy/cidr.js';
import { DASHBOARD_HTML } from './dashboard.js';
import { checkName } from './policy/check.js';
import type { Reloader } from './reload.js';
import type { Resolver } from './resolver.js';
import { StartupError } from './server/bind-error.js';
import { OUTCOMES, type QueryStats } from './stats.js';
import type { Endpoint } from './upstream/endpoint.js';
import { LATENCY_BUCKETS_MS, type Forwarder } from './upstream/forwarder.js';
import { parseQtype, qtypeName, rcodeName } from './wire/constants.js';
import { DROP, parseQuery, Query } from './wire/query.js';

export interface ReloadStats {
  count: number;
  failures: number;
  lastMs: number;
}

export interface AdminDeps {
  config: Config;
  resolver: Resolver;
  cache: AnswerCache;
  forwarder: Forwarder;
  reloader: Reloader;
  stats: QueryStats;
  reloads: ReloadStats;
  allowNets: NetworkList | null;
  exemptClients: NetworkList | null;
}

/** An upstream that answered within this long counts as healthy without a probe. */
const RECENT_ANSWER_MS = 60_000;

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body, null, 1) + '\n' : String(body);
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
  res.end(text);
}

function authorized(req: IncomingMessage, token: string | null): boolean {
  if (token === null) return true;
  const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '');
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** Asks the upstreams for the root NS records, through the forwarder, to see that one answers. */
function probeUpstreams(forwarder: Forwarder): Promise<{ ok: boolean; reason: string }> {
  const msg = Buffer.from([Math.random() * 256, Math.random() * 256, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]);
  const q = parseQuery(msg);
  if (q === DROP || !(q instanceof Query)) return Promise.resolve({ ok: false, reason: 'internal: probe query did not parse' });
  return new Promise((resolve) => forwarder.forward(q, (r) => resolve({ ok: r.ok, reason: r.ok ? '' : r.failure })));
}

async function health(deps: AdminDeps): Promise<{ status: number; body: Record<string, unknown> }> {
  const rules = deps.resolver.rules;
  const { forwarder } = deps;
  const base = (): Record<string, unknown> => ({
    rules: rules.nameRuleCount + rules.ipRuleCount, files: rules.files.length,
    upstreams: forwarder.upstreams.map((u, i) => ({
      upstream: u.label, lastAnswerSecondsAgo: forwarder.lastAnswerAt[i] ? Math.round((Date.now() - forwarder.lastAnswerAt[i]!) / 1000) : null,
    })),
  });
  if (rules.files.length === 0) return { status: 503, body: { status: 'fail', reason: `no blocklists loaded from ${deps.config.blocklists}`, ...base() } };
  if (!forwarder.lastAnswerAt.some((t) => Date.now() - t < RECENT_ANSWER_MS)) {
    const probe = await probeUpstreams(forwarder);
    if (!probe.ok) return { status: 503, body: { status: 'fail', reason: `no upstream answered: ${probe.reason}`, ...base() } };
  }
  return { status: 200, body: { status: 'ok', ...base() } };
}

function metrics(deps: AdminDeps): string {
  const { stats, resolver, cache, forwarder, reloads } = deps;
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const label = (pairs: Record<string, string>): string =>
    `{${Object.entries(pairs).map(([k, v]) => `${k}="${v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`).join(',')}}`;
  metric('sinkhole_queries_total', 'counter', 'Answered queries by verdict.',
    OUTCOMES.map((o, i) => [label({ verdict: o === 'servfail' ? 'error' : o }), stats.byOutcome[i]!]));
  const types: [string, number][] = [];
  stats.byType.forEach((n, t) => n > 0 && types.push([label({ qtype: t === 256 ? 'other' : qtypeName(t) }), n]));
  metric('sinkhole_queries_by_type_total', 'counter', 'Answered queries by query type.', types);
  const rcodes: [string, number][] = [];
  stats.byRcode.forEach((n, r) => n > 0 && rcodes.push([label({ rcode: rcodeName(r) }), n]));
  metric('sinkhole_responses_by_rcode_total', 'counter', 'Answers by response code.', rcodes);
  metric('sinkhole_packets_dropped_total', 'counter', 'Packets not answered or answered FORMERR/NOTIMP before parsing.',
    [[label({ reason: 'malformed' }), resolver.counters.malformed], [label({ reason: 'not_a_query' }), resolver.counters.dropped]]);
  metric('sinkhole_cache_hits_total', 'counter', 'Cache lookups that found an answer.', [['', cache.hits]]);
  metric('sinkhole_cache_misses_total', 'counter', 'Cache lookups that found none.', [['', cache.misses]]);
  metric('sinkhole_cache_entries', 'gauge', 'Answers in the cache.', [['', cache.size]]);
  metric('sinkhole_upstream_queries_total', 'counter', 'Queries sent to each upstream (every try).',
    forwarder.upstreams.map((u, i) => [label({ upstream: u.label }), forwarder.stats[i]!.queries]));
  metric('sinkhole_upstream_timeouts_total', 'counter', 'Tries an upstream did not answer in time.',
    forwarder.upstreams.map((u, i) => [label({ upstream: u.label }), forwarder.stats[i]!.timeouts]));
  metric('sinkhole_upstream_failures_total', 'counter', 'Answers with SERVFAIL, REFUSED or another failure rcode.',
    forwarder.upstreams.map((u, i) => [label({ upstream: u.label }), forwarder.stats[i]!.failures]));
  lines.push('# HELP sinkhole_upstream_latency_seconds Time from sending to an upstream to its answer.', '# TYPE sinkhole_upstream_latency_seconds histogram');
  forwarder.upstreams.forEach((u, i) => {
    const s = forwarder.stats[i]!;
    let cumulative = 0;
    LATENCY_BUCKETS_MS.forEach((le, b) => {
      cumulative += s.latency[b]!;
      lines.push(`sinkhole_upstream_latency_seconds_bucket${label({ upstream: u.label, le: String(le / 1000) })} ${cumulative}`);
    });
    cumulative += s.latency[LATENCY_BUCKETS_MS.length]!;
    lines.push(`sinkhole_upstream_latency_seconds_bucket${label({ upstream: u.label, le: '+Inf' })} ${cumulative}`);
    lines.push(`sinkhole_upstream_latency_seconds_sum${label({ upstream: u.label })} ${s.latencySumMs / 1000}`);
    lines.push(`sinkhole_upstream_latency_seconds_count${label({ upstream: u.label })} ${cumulative}`);
  });
  metric('sinkhole_rules', 'gauge', 'Rules loaded per blocklist file.',
    resolver.rules.files.map((f) => [label({ file: f.path, bundle: f.bundle }), f.keys.length + f.ipRules.length]));
  metric('sinkhole_reloads_total', 'counter', 'Blocklist reloads.', [['', reloads.count]]);
  metric('sinkhole_reload_failures_total', 'counter', 'Reloads that could not read the folder or a file.', [['', reloads.failures]]);
  metric('sinkhole_reload_duration_seconds', 'gauge', 'Duration of the last reload.', [['', reloads.lastMs / 1000]]);
  return lines.join('\n') + '\n';
}

function apiStats(deps: AdminDeps): Record<string, unknown> {
  const { stats, cache, resolver } = deps;
  const byOutcome = Object.fromEntries(OUTCOMES.map((o, i) => [o, stats.byOutcome[i]]));
  const total = stats.byOutcome.reduce((a, b) => a + b, 0);
  return {
    uptimeSeconds: Math.round((Date.now() - stats.startedAt) / 1000),
    queries: total, ...byOutcome, blockedShare: total > 0 ? stats.byOutcome[0]! / total : 0,
    cache: { entries: cache.size, hits: cache.hits, misses: cache.misses, hitRate: cache.hits + cache.misses > 0 ? cache.hits / (cache.hits + cache.misses) : 0 },
    rules: resolver.rules.nameRuleCount + resolver.rules.ipRuleCount, reloads: deps.reloads,
    upstreams: deps.forwarder.upstreams.map((u, i) => ({
      upstream: u.label, queries: deps.forwarder.stats[i]!.queries, timeouts: deps.forwarder.stats[i]!.timeouts,
      lastAnswerSecondsAgo: deps.forwarder.lastAnswerAt[i] ? Math.round((Date.now() - deps.forwarder.lastAnswerAt[i]!) / 1000) : null,
    })),
    topBlockedClients: stats.topClients.top(10),
    topBlockedBundles: stats.topBundles.top(10),
    topBlockedDomains: stats.topDomains.top(10),
    recentBlocked: stats.recent.reverse().slice(0, 20),
    last24h: stats.timeline(),
  };
}

async function route(req: IncomingMessage, res: ServerResponse, deps: AdminDeps, token: string | null): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  // The page holds no data (it reads /api/stats), so it is served without a token.
  if (req.method === 'GET' && url.pathname === '/') {
    send(res, 200, DASHBOARD_HTML, 'text/html');
    return;
  }
  if (!authorized(req, token)) {
    res.setHeader('www-authenticate', 'Bearer');
    send(res, 401, { error: 'missing or wrong bearer token (Authorization: Bearer TOKEN)' });
    return;
  }
  const key = `${req.method} ${url.pathname}`;
  if (key === 'GET /healthz') {
    const h = await health(deps);
    send(res, h.status, h.body);
  } else if (key === 'GET /metrics') {
    send(res, 200, metrics(deps), 'text/plain; version=0.0.4');
  } else if (key === 'POST /reload') {
    const before = deps.reloads.count;
    await deps.reloader.trigger('admin');
    send(res, 200, { reloaded: deps.reloads.count > before, rules: deps.resolver.rules.nameRuleCount + deps.resolver.rules.ipRuleCount, ms: deps.reloads.lastMs });
  } else if (key === 'GET /api/check') {
    const name = url.searchParams.get('name');
    const qtype = parseQtype(url.searchParams.get('type') ?? 'A');
    if (name === null || qtype === undefined) {
      send(res, 400, { error: 'give ?name=NAME, and optionally &type=A|AAAA|...&client=IP' });
      return;
    }
    const result = checkName({ rules: deps.resolver.rules, allowNets: deps.allowNets, exemptClients: deps.exemptClients,
      sinkholeIpv4: deps.config.sinkholeIpv4, sinkholeIpv6: deps.config.sinkholeIpv6 }, name, qtype, url.searchParams.get('client'));
    send(res, 'error' in result ? 400 : 200, result);
  } else if (key === 'GET /api/stats') {
    send(res, 200, apiStats(deps));
  } else {
    send(res, 404, { error: `no ${key}; try GET / (dashboard), GET /healthz, GET /metrics, POST /reload, GET /api/check?name=, GET /api/stats` });
  }
}

export function startAdmin(endpoint: Endpoint, token: string | null, deps: AdminDeps): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      route(req, res, deps, token).catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
    });
    server.once('error', (err: NodeJS.ErrnoException) => reject(new StartupError(`cannot listen on ${endpoint.label} (admin HTTP): ${err.code ?? err.message}; choose another --admin`)));
    server.listen(endpoint.port, endpoint.host, () => resolve(server));
  });
}
