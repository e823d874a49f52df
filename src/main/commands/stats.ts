// `sinkhole stats`: the admin API's figures in the terminal.
import { configFrom, ConfigError, UnreachableError, type Config } from '../../config/config.js';
import { flag } from '../../config/option.js';
import type { Command } from './command.js';
import { printFleet } from './fleet.js';

export const statsFleet = flag({ name: 'fleet', commands: ['stats'], help: 'the whole fleet and each node, from the fleet\'s Redis (--redis), instead of this server' });

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
  topBlockedClients: { key: string; count: number; name?: string }[];
  topBlockedBundles: { key: string; count: number }[];
  topBlockedDomains: { key: string; count: number }[];
  /** Absent from a server older than this command. */
  dohBypassClients?: { key: string; count: number }[];
  recentBlocked: { time: string; client: string; name?: string; qname: string; qtype: string; bundle: string }[];
}

export async function printStats(config: Config): Promise<void> {
  if (config.admin === null) throw new ConfigError('sinkhole stats needs the admin API: pass --admin ADDR:PORT (and --admin-token) or --config FILE that sets admin');
  const host = config.admin.host === '0.0.0.0' ? '127.0.0.1' : config.admin.host === '::' ? '::1' : config.admin.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.admin.port}/api/stats`;
  let response: Response;
  try {
    response = await fetch(url, { headers: config.adminToken ? { authorization: `Bearer ${config.adminToken}` } : {} });
  } catch (err) {
    throw new UnreachableError(`cannot reach the admin API at ${url}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}; is the server running with --admin?`);
  }
  // A refused token is the caller's to fix (2); a server that fails is a runtime problem (3).
  if (!response.ok) {
    const message = `the admin API at ${url} answered ${response.status}${response.status === 401 ? ': pass --admin-token' : ''}`;
    throw response.status === 401 || response.status === 403 ? new ConfigError(message) : new UnreachableError(message);
  }
  const s = (await response.json()) as Stats;
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  /** A client as `name (address)` when the server knows its name. */
  const client = (address: string, name?: string): string => (name === undefined ? address : `${name} (${address})`);
  const list = (title: string, rows: { key: string; count: number; name?: string }[]): string[] =>
    [title, ...(rows.length === 0 ? ['  (none)'] : rows.map((r) => `  ${String(r.count).padStart(8)}  ${client(r.key, r.name)}`))];
  console.log([
    `up ${Math.round(s.uptimeSeconds / 60)} min; ${s.queries} queries: ${s.blocked} blocked (${pct(s.blockedShare)}), ${s.cached} from the cache, ` +
      `${s.forwarded} forwarded, ${s.refused} refused, ${s.servfail} failed`,
    `cache: ${s.cache.entries} answers, hit rate ${pct(s.cache.hitRate)}; ${s.rules} rules`,
    ...s.upstreams.map((u) => `upstream ${u.upstream}: ${u.queries} queries, ${u.timeouts} timeouts, last answer ${u.lastAnswerSecondsAgo === null ? 'never' : `${u.lastAnswerSecondsAgo} s ago`}`),
    ...list('top blocked clients:', s.topBlockedClients),
    ...list('top blocked bundles:', s.topBlockedBundles),
    ...list('top blocked domains:', s.topBlockedDomains),
    ...list('DoH bypass attempts (clients that looked up a public DoH/DoT resolver, bundle doh-bypass):', s.dohBypassClients ?? []),
    'latest blocked attempts:',
    ...(s.recentBlocked.length === 0 ? ['  (none)'] : s.recentBlocked.slice(0, 10).map((r) => `  ${r.time}  ${client(r.client, r.name)}  ${r.qname} ${r.qtype}  (${r.bundle})`)),
  ].join('\n'));
}

export const statsCommand: Command = {
  name: 'stats', operands: '', minOperands: 0, maxOperands: 0,
  summary: 'print the running server\'s statistics, from its admin API',
  description: 'Prints the running server\'s figures (queries, blocked share, cache, upstreams, top blocked clients, bundles and names, clients that looked up a public DoH/DoT resolver (bundle doh-bypass), latest blocked attempts) from its admin API. ' +
    'It needs --admin (and --admin-token if the server has one), or a config file that sets them. Exit status 3 when the admin API does not answer.',
  own: [statsFleet],
  run: async ({ settings }) => {
    const config = configFrom(settings, { needUpstreams: false });
    if (settings.get(statsFleet)) await printFleet(config, false);
    else await printStats(config);
    return 0;
  },
};
