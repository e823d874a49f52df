// `sinkhole stats`: the admin API's figures in the terminal.
import type { Config } from '../../config/config.js';
import { ConfigError } from '../../config/config.js';

interface Stats {
  uptimeSeconds: number;
  queries: number;
  blocked: number;
  forwarded: number;
  cached: number;
  refused: number;
  servfail: number;
  blockedShare: number;
  cache: { entries: number; hitRate: number };
  rules: number;
  upstreams: { upstream: string; queries: number; timeouts: number; lastAnswerSecondsAgo: number | null }[];
  topBlockedClients: { key: string; count: number }[];
  topBlockedBundles: { key: string; count: number }[];
  topBlockedDomains: { key: string; count: number }[];
  recentBlocked: { time: string; client: string; qname: string; qtype: string; bundle: string }[];
}

export async function printStats(config: Config): Promise<void> {
  if (config.admin === null) throw new ConfigError('sinkhole stats needs the admin API: pass --admin ADDR:PORT (and --admin-token) or --config FILE that sets admin');
  const host = config.admin.host === '0.0.0.0' ? '127.0.0.1' : config.admin.host === '::' ? '::1' : config.admin.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.admin.port}/api/stats`;
  let response: Response;
  try {
    response = await fetch(url, { headers: config.adminToken ? { authorization: `Bearer ${config.adminToken}` } : {} });
  } catch (err) {
    throw new ConfigError(`cannot reach the admin API at ${url}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}; is the server running with --admin?`);
  }
  if (!response.ok) throw new ConfigError(`the admin API at ${url} answered ${response.status}${response.status === 401 ? ': pass --admin-token' : ''}`);
  const s = (await response.json()) as Stats;
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const list = (title: string, rows: { key: string; count: number }[]): string[] =>
    [title, ...(rows.length === 0 ? ['  (none)'] : rows.map((r) => `  ${String(r.count).padStart(8)}  ${r.key}`))];
  console.log([
    `up ${Math.round(s.uptimeSeconds / 60)} min; ${s.queries} queries: ${s.blocked} blocked (${pct(s.blockedShare)}), ${s.cached} from the cache, ` +
      `${s.forwarded} forwarded, ${s.refused} refused, ${s.servfail} failed`,
    `cache: ${s.cache.entries} answers, hit rate ${pct(s.cache.hitRate)}; ${s.rules} rules`,
    ...s.upstreams.map((u) => `upstream ${u.upstream}: ${u.queries} queries, ${u.timeouts} timeouts, last answer ${u.lastAnswerSecondsAgo === null ? 'never' : `${u.lastAnswerSecondsAgo} s ago`}`),
    ...list('top blocked clients:', s.topBlockedClients),
    ...list('top blocked bundles:', s.topBlockedBundles),
    ...list('top blocked domains:', s.topBlockedDomains),
    'latest blocked attempts:',
    ...(s.recentBlocked.length === 0 ? ['  (none)'] : s.recentBlocked.slice(0, 10).map((r) => `  ${r.time}  ${r.client}  ${r.qname} ${r.qtype}  (${r.bundle})`)),
  ].join('\n'));
}
