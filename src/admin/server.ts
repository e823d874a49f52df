// The admin HTTP server: health, Prometheus metrics, reload and "why is this blocked?" over
// HTTP. Off by default; loopback only unless a bearer token is configured, and with a
// token every request must carry it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AnswerCache } from '../stages/cache/answer-cache.js';
import type { Config } from '../config/config.js';
import type { NetworkList } from '../stages/policy/cidr.js';
import { DASHBOARD_HTML } from './dashboard.js';
import { checkName } from '../stages/policy/check.js';
import type { Reloader } from '../stages/policy/reload.js';
import type { Resolver } from '../pipeline/resolver.js';
import { StartupError } from '../net/bind-error.js';
import { OUTCOMES, type BlockedAttempt, type QueryStats } from '../observe/stats.js';
import { topOf } from '../observe/topk.js';
import type { Endpoint } from '../net/endpoint.js';
import { LATENCY_BUCKETS_MS, type Forwarder } from '../stages/forward/forwarder.js';
import { parseQtype, qtypeName, rcodeName } from '../wire/constants.js';
import { DROP, parseQuery, Query } from '../wire/query.js';

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

/**
 * Everything /metrics and /api/stats show, as plain data: one process's figures, or (with
 * --workers) the sum of every worker's, gathered by the primary (admin-cluster.ts).
 */
export interface AdminSnapshot {
  startedAt: number;
  byOutcome: number[];
  byType: number[];
  byRcode: number[];
  malformed: number;
  notAQuery: number;
  cache: { hits: number; misses: number; entries: number };
  upstreams: { label: string; queries: number; timeouts: number; failures: number; latency: number[]; latencySumMs: number; lastAnswerAt: number }[];
  rules: { file: string; bundle: string; count: number }[];
  ruleCount: number;
  reloads: ReloadStats;
  topClients: [string, number][];
  topBundles: [string, number][];
  topDomains: [string, number][];
  /** Oldest first. */
  recent: BlockedAttempt[];
  timeline: { hour: string; queries: number; blocked: number }[];
}

export function takeSnapshot(deps: AdminDeps): AdminSnapshot {
  const { stats, resolver, cache, forwarder } = deps;
  return {
    startedAt: stats.startedAt,
    byOutcome: [...stats.byOutcome], byType: [...stats.byType], byRcode: [...stats.byRcode],
    malformed: resolver.counters.malformed, notAQuery: resolver.counters.dropped,
    cache: { hits: cache.hits, misses: cache.misses, entries: cache.size },
    upstreams: forwarder.upstreams.map((u, i) => {
      const s = forwarder.stats[i]!;
      return { label: u.label, queries: s.queries, timeouts: s.timeouts, failures: s.failures, latency: [...s.latency], latencySumMs: s.latencySumMs, lastAnswerAt: forwarder.lastAnswerAt[i]! };
    }),
    rules: resolver.rules.files.map((f) => ({ file: f.path, bundle: f.bundle, count: f.keys.length + f.ipRules.length })),
    ruleCount: resolver.rules.nameRuleCount + resolver.rules.ipRuleCount,
    reloads: { ...deps.reloads },
    topClients: stats.topClients.entries(), topBundles: stats.topBundles.entries(), topDomains: stats.topDomains.entries(),
    recent: stats.recent,
    timeline: stats.timeline(),
  };
}

/** The workers' snapshots as one: counts added up, the latest attempts interleaved by time. */
export function mergeSnapshots(list: readonly AdminSnapshot[]): AdminSnapshot {
  const [first, ...rest] = list;
  if (first === undefined) throw new Error('no snapshot to merge');
  const add = (a: number[], b: number[]): number[] => a.map((x, i) => x + (b[i] ?? 0));
  const addTop = (lists: [string, number][][]): [string, number][] => {
    const sum = new Map<string, number>();
    for (const l of lists) for (const [k, n] of l) sum.set(k, (sum.get(k) ?? 0) + n);
    return [...sum];
  };
  const merged: AdminSnapshot = structuredClone(first);
  for (const s of rest) {
    merged.startedAt = Math.min(merged.startedAt, s.startedAt);
    merged.byOutcome = add(merged.byOutcome, s.byOutcome);
    merged.byType = add(merged.byType, s.byType);
    merged.byRcode = add(merged.byRcode, s.byRcode);
    merged.malformed += s.malformed;
    merged.notAQuery += s.notAQuery;
    merged.cache = { hits: merged.cache.hits + s.cache.hits, misses: merged.cache.misses + s.cache.misses, entries: merged.cache.entries + s.cache.entries };
    merged.upstreams = merged.upstreams.map((u, i) => {
      const o = s.upstreams[i]!;
      return { label: u.label, queries: u.queries + o.queries, timeouts: u.timeouts + o.timeouts, failures: u.failures + o.failures,
        latency: add(u.latency, o.latency), latencySumMs: u.latencySumMs + o.latencySumMs, lastAnswerAt: Math.max(u.lastAnswerAt, o.lastAnswerAt) };
    });
    // Every worker reads the same folder: the rules are the first's; reloads happen in each.
    merged.reloads = { count: Math.min(merged.reloads.count, s.reloads.count), failures: Math.max(merged.reloads.failures, s.reloads.failures),
      lastMs: Math.max(merged.reloads.lastMs, s.reloads.lastMs) };
    merged.timeline = merged.timeline.map((h, i) => ({ hour: h.hour, queries: h.queries + (s.timeline[i]?.queries ?? 0), blocked: h.blocked + (s.timeline[i]?.blocked ?? 0) }));
  }
  merged.topClients = addTop(list.map((s) => s.topClients));
  merged.topBundles = addTop(list.map((s) => s.topBundles));
  merged.topDomains = addTop(list.map((s) => s.topDomains));
  merged.recent = list.flatMap((s) => s.recent).sort((a, b) => a.time.localeCompare(b.time)).slice(-50);
  return merged;
}

function renderMetrics(s: AdminSnapshot): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const label = (pairs: Record<string, string>): string =>
    `{${Object.entries(pairs).map(([k, v]) => `${k}="${v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`).join(',')}}`;
  metric('sinkhole_queries_total', 'counter', 'Answered queries by verdict.',
    OUTCOMES.map((o, i) => [label({ verdict: o === 'servfail' ? 'error' : o }), s.byOutcome[i]!]));
  const types: [string, number][] = [];
  s.byType.forEach((n, t) => n > 0 && types.push([label({ qtype: t === 256 ? 'other' : qtypeName(t) }), n]));
  metric('sinkhole_queries_by_type_total', 'counter', 'Answered queries by query type.', types);
  const rcodes: [string, number][] = [];
  s.byRcode.forEach((n, r) => n > 0 && rcodes.push([label({ rcode: rcodeName(r) }), n]));
  metric('sinkhole_responses_by_rcode_total', 'counter', 'Answers by response code.', rcodes);
  metric('sinkhole_packets_dropped_total', 'counter', 'Packets not answered or answered FORMERR/NOTIMP before parsing.',
    [[label({ reason: 'malformed' }), s.malformed], [label({ reason: 'not_a_query' }), s.notAQuery]]);
  metric('sinkhole_cache_hits_total', 'counter', 'Cache lookups that found an answer.', [['', s.cache.hits]]);
  metric('sinkhole_cache_misses_total', 'counter', 'Cache lookups that found none.', [['', s.cache.misses]]);
  metric('sinkhole_cache_entries', 'gauge', 'Answers in the cache.', [['', s.cache.entries]]);
  metric('sinkhole_upstream_queries_total', 'counter', 'Queries sent to each upstream (every try).',
    s.upstreams.map((u) => [label({ upstream: u.label }), u.queries]));
  metric('sinkhole_upstream_timeouts_total', 'counter', 'Tries an upstream did not answer in time.',
    s.upstreams.map((u) => [label({ upstream: u.label }), u.timeouts]));
  metric('sinkhole_upstream_failures_total', 'counter', 'Answers with SERVFAIL, REFUSED or another failure rcode.',
    s.upstreams.map((u) => [label({ upstream: u.label }), u.failures]));
  lines.push('# HELP sinkhole_upstream_latency_seconds Time from sending to an upstream to its answer.', '# TYPE sinkhole_upstream_latency_seconds histogram');
  for (const u of s.upstreams) {
    let cumulative = 0;
    LATENCY_BUCKETS_MS.forEach((le, b) => {
      cumulative += u.latency[b]!;
      lines.push(`sinkhole_upstream_latency_seconds_bucket${label({ upstream: u.label, le: String(le / 1000) })} ${cumulative}`);
    });
    cumulative += u.latency[LATENCY_BUCKETS_MS.length]!;
    lines.push(`sinkhole_upstream_latency_seconds_bucket${label({ upstream: u.label, le: '+Inf' })} ${cumulative}`);
    lines.push(`sinkhole_upstream_latency_seconds_sum${label({ upstream: u.label })} ${u.latencySumMs / 1000}`);
    lines.push(`sinkhole_upstream_latency_seconds_count${label({ upstream: u.label })} ${cumulative}`);
  }
  metric('sinkhole_rules', 'gauge', 'Rules loaded per blocklist file.', s.rules.map((f) => [label({ file: f.file, bundle: f.bundle }), f.count]));
  metric('sinkhole_reloads_total', 'counter', 'Blocklist reloads.', [['', s.reloads.count]]);
  metric('sinkhole_reload_failures_total', 'counter', 'Reloads that could not read the folder or a file.', [['', s.reloads.failures]]);
  metric('sinkhole_reload_duration_seconds', 'gauge', 'Duration of the last reload.', [['', s.reloads.lastMs / 1000]]);
  return lines.join('\n') + '\n';
}

function renderStats(s: AdminSnapshot): Record<string, unknown> {
  const byOutcome = Object.fromEntries(OUTCOMES.map((o, i) => [o, s.byOutcome[i]]));
  const total = s.byOutcome.reduce((a, b) => a + b, 0);
  const { hits, misses, entries } = s.cache;
  return {
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    queries: total, ...byOutcome, blockedShare: total > 0 ? s.byOutcome[0]! / total : 0,
    cache: { entries, hits, misses, hitRate: hits + misses > 0 ? hits / (hits + misses) : 0 },
    rules: s.ruleCount, reloads: s.reloads,
    upstreams: s.upstreams.map((u) => ({
      upstream: u.label, queries: u.queries, timeouts: u.timeouts,
      lastAnswerSecondsAgo: u.lastAnswerAt ? Math.round((Date.now() - u.lastAnswerAt) / 1000) : null,
    })),
    topBlockedClients: topOf(s.topClients, 10),
    topBlockedBundles: topOf(s.topBundles, 10),
    topBlockedDomains: topOf(s.topDomains, 10),
    recentBlocked: [...s.recent].reverse().slice(0, 20),
    last24h: s.timeline,
  };
}

/** What the admin API asks of the server: answered in-process, or by the workers over IPC. */
export interface AdminBackend {
  snapshot(): Promise<AdminSnapshot>;
  health(): Promise<{ status: number; body: Record<string, unknown> }>;
  reload(): Promise<Record<string, unknown>>;
  check(name: string, qtype: number, client: string | null): Promise<Record<string, unknown>>;
}

export function localBackend(deps: AdminDeps): AdminBackend {
  return {
    snapshot: () => Promise.resolve(takeSnapshot(deps)),
    health: () => health(deps),
    reload: async () => {
      const before = deps.reloads.count;
      await deps.reloader.trigger('admin');
      return { reloaded: deps.reloads.count > before, rules: deps.resolver.rules.nameRuleCount + deps.resolver.rules.ipRuleCount, ms: deps.reloads.lastMs };
    },
    check: (name, qtype, client) => Promise.resolve(checkName({ rules: deps.resolver.rules, allowNets: deps.allowNets, exemptClients: deps.exemptClients,
      sinkholeIpv4: deps.config.sinkholeIpv4, sinkholeIpv6: deps.config.sinkholeIpv6 }, name, qtype, client) as unknown as Record<string, unknown>),
  };
}

async function route(req: IncomingMessage, res: ServerResponse, backend: AdminBackend, token: string | null): Promise<void> {
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
    const h = await backend.health();
    send(res, h.status, h.body);
  } else if (key === 'GET /metrics') {
    send(res, 200, renderMetrics(await backend.snapshot()), 'text/plain; version=0.0.4');
  } else if (key === 'POST /reload') {
    send(res, 200, await backend.reload());
  } else if (key === 'GET /api/check') {
    const name = url.searchParams.get('name');
    const qtype = parseQtype(url.searchParams.get('type') ?? 'A');
    if (name === null || qtype === undefined) {
      send(res, 400, { error: 'give ?name=NAME, and optionally &type=A|AAAA|...&client=IP' });
      return;
    }
    const result = await backend.check(name, qtype, url.searchParams.get('client'));
    send(res, 'error' in result ? 400 : 200, result);
  } else if (key === 'GET /api/stats') {
    send(res, 200, renderStats(await backend.snapshot()));
  } else {
    send(res, 404, { error: `no ${key}; try GET / (dashboard), GET /healthz, GET /metrics, POST /reload, GET /api/check?name=, GET /api/stats` });
  }
}

export function startAdmin(endpoint: Endpoint, token: string | null, backend: AdminBackend): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      route(req, res, backend, token).catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
    });
    server.once('error', (err: NodeJS.ErrnoException) => reject(new StartupError(`cannot listen on ${endpoint.label} (admin HTTP): ${err.code ?? err.message}; choose another --admin`)));
    server.listen(endpoint.port, endpoint.host, () => resolve(server));
  });
}
