// Settings: one table of options, read from the config file (`key value` lines) and from
// flags (`--key value`); flags override the file. Everything is validated here, once, into
// one typed Config; a bad value stops startup with one line saying where and what to do.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parseCidr, type Cidr } from '../stages/policy/cidr.js';
import { LOG_LEVELS, type LogLevel } from '../observe/log.js';
import { parseQueryLogMode, type QueryLogMode } from '../observe/query-log.js';
import { endpointLabel, parseEndpoint, type Endpoint } from '../net/endpoint.js';

export class ConfigError extends Error {}

export interface Config {
  listen: Endpoint[];
  /** True when `listen` is the built-in default: a missing IPv6 loopback is then only a warning. */
  listenIsDefault: boolean;
  upstreams: Endpoint[];
  /** Where the upstreams came from, for the startup log. */
  upstreamSource: string;
  blocklists: string;
  sinkholeIpv4: string;
  sinkholeIpv6: string;
  blockedTtl: number;
  cacheSize: number;
  cacheMinTtl: number;
  cacheMaxTtl: number;
  servfailTtl: number;
  upstreamTimeoutMs: number;
  tcpIdleTimeoutMs: number;
  tcpMaxConnections: number;
  logLevel: LogLevel;
  /** Networks whose clients get answers; null means every client (an open resolver). */
  allowNets: Cidr[] | null;
  exemptClients: Cidr[];
  workers: number;
  admin: Endpoint | null;
  adminToken: string | null;
  /** null = off; 'stdout' or a file path. */
  queryLog: string | null;
  queryLogMode: QueryLogMode;
}

interface OptionSpec {
  name: string;
  arg: string;
  help: string;
  repeatable?: boolean;
  defaultText: string;
}

export const OPTIONS: OptionSpec[] = [
  { name: 'config', arg: 'FILE', help: 'read settings from FILE (`key value` lines); flags override it', defaultText: 'none' },
  { name: 'listen', arg: 'ADDR:PORT', repeatable: true, help: 'address to serve DNS on, UDP and TCP; IPv6 as [::1]:5353', defaultText: '127.0.0.1:5353 and [::1]:5353' },
  { name: 'upstream', arg: 'HOST[:PORT]', repeatable: true, help: 'resolver to forward to, tried in turn on failure; port 53 if left out', defaultText: 'the nameservers in /etc/resolv.conf, less this server\'s own addresses' },
  { name: 'blocklists', arg: 'DIR', help: 'folder whose *.txt files hold the rules', defaultText: './blocklists' },
  { name: 'sinkhole-ipv4', arg: 'ADDR', help: 'address in A answers for blocked names', defaultText: '127.0.0.1' },
  { name: 'sinkhole-ipv6', arg: 'ADDR', help: 'address in AAAA answers for blocked names', defaultText: '::1' },
  { name: 'blocked-ttl', arg: 'SECONDS', help: 'TTL of blocked answers (short, so unblocking takes effect soon)', defaultText: '10' },
  { name: 'cache-size', arg: 'N', help: 'answers kept in the cache; 0 turns the cache off', defaultText: '10000' },
  { name: 'cache-min-ttl', arg: 'SECONDS', help: 'cache answers at least this long', defaultText: '0' },
  { name: 'cache-max-ttl', arg: 'SECONDS', help: 'cache answers at most this long', defaultText: '86400' },
  { name: 'servfail-ttl', arg: 'SECONDS', help: 'how long an upstream SERVFAIL is cached (at most 30)', defaultText: '3' },
  { name: 'upstream-timeout', arg: 'MS', help: 'longest wait for an upstream before asking again (adapts to its round-trip time)', defaultText: '1000' },
  { name: 'tcp-idle-timeout', arg: 'MS', help: 'close client TCP connections idle this long', defaultText: '10000' },
  { name: 'tcp-max-connections', arg: 'N', help: 'open client TCP connections at most, per listen address', defaultText: '256' },
  { name: 'allow-net', arg: 'CIDR|any', repeatable: true, help: 'clients that get answers; others get REFUSED. `any` makes an open resolver', defaultText: 'loopback, 10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16, fc00::/7, fe80::/10' },
  { name: 'exempt-client', arg: 'CIDR', repeatable: true, help: 'clients that are never blocked (e.g. an admin PC)', defaultText: 'none' },
  { name: 'admin', arg: 'ADDR:PORT', help: 'serve the admin HTTP API (health, metrics, reload, check) here; beyond loopback only with --admin-token', defaultText: 'off' },
  { name: 'admin-token', arg: 'TOKEN', help: 'require "Authorization: Bearer TOKEN" on every admin request', defaultText: 'none' },
  { name: 'query-log', arg: 'stdout|FILE|off', help: 'one JSON line per query (client, name, type, verdict, rule, rcode, upstream, ms); reopened on SIGHUP', defaultText: 'off' },
  { name: 'query-log-mode', arg: 'all|blocked|sample:N', help: 'which queries the query log keeps; blocked queries are always kept', defaultText: 'all' },
  { name: 'workers', arg: 'N', help: 'processes answering on the same sockets (one per core is plenty)', defaultText: '1' },
  { name: 'log-level', arg: 'LEVEL', help: `one of ${LOG_LEVELS.join(', ')}`, defaultText: 'info' },
  { name: 'resolv-conf', arg: 'FILE', help: 'where to find nameservers when no --upstream is given', defaultText: '/etc/resolv.conf' },
];

const OPTION_NAMES = new Set(OPTIONS.map((o) => o.name));
const REPEATABLE = new Set(OPTIONS.filter((o) => o.repeatable).map((o) => o.name));

export const DEFAULT_ALLOW_NETS = [
  '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16',
  '::1/128', 'fc00::/7', 'fe80::/10',
];

/** Raw settings: option name -> values with where each came from. */
type RawSettings = Map<string, { value: string; where: string }[]>;

export function parseFlags(args: string[]): { raw: RawSettings; positional: string[] } {
  const raw: RawSettings = new Map();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (!OPTION_NAMES.has(name)) throw new ConfigError(`unknown option --${name} (see "sinkhole serve --help")`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`option --${name} needs a value (see "sinkhole serve --help")`);
      value = next;
      i++;
    }
    const list = raw.get(name) ?? [];
    if (list.length > 0 && !REPEATABLE.has(name)) throw new ConfigError(`option --${name} is given twice; give it once`);
    list.push({ value, where: `--${name}` });
    raw.set(name, list);
  }
  return { raw, positional };
}

export function parseConfigFile(path: string): RawSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const raw: RawSettings = new Map();
  text.split('\n').forEach((rawLine, index) => {
    const where = `${path}:${index + 1}`;
    const line = rawLine.replace(/#.*/, '').trim();
    if (line.length === 0) return;
    const m = /^([a-z0-9-]+)\s+(.+)$/.exec(line);
    if (!m) throw new ConfigError(`${where}: expected "setting value", found "${line}"`);
    const name = m[1]!;
    if (!OPTION_NAMES.has(name) || name === 'config') throw new ConfigError(`${where}: unknown setting "${name}" (see "sinkhole serve --help")`);
    const list = raw.get(name) ?? [];
    if (list.length > 0 && !REPEATABLE.has(name)) throw new ConfigError(`${where}: "${name}" is set twice; set it once`);
    list.push({ value: m[2]!.trim(), where });
    raw.set(name, list);
  });
  return raw;
}

function integer(v: { value: string; where: string }, min: number, max: number): number {
  if (!/^\d+$/.test(v.value) || Number(v.value) < min || Number(v.value) > max) {
    throw new ConfigError(`${v.where}: "${v.value}" must be a whole number from ${min} to ${max}`);
  }
  return Number(v.value);
}

function address(v: { value: string; where: string }, family: 4 | 6): string {
  if (isIP(v.value) !== family) throw new ConfigError(`${v.where}: "${v.value}" is not an IPv${family} address`);
  return v.value;
}

function cidrs(values: { value: string; where: string }[]): Cidr[] {
  return values.map((v) => {
    const c = parseCidr(v.value);
    if ('error' in c) throw new ConfigError(`${v.where}: ${c.error}`);
    return c;
  });
}

/** Nameservers of a resolv.conf, less any that would be this server itself (a forwarding loop). */
export function upstreamsFromResolvConf(path: string, listen: Endpoint[]): Endpoint[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const local = new Set<string>(['0.0.0.0', '::']);
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) local.add(i.address);
  const isLocal = (host: string): boolean => local.has(host) || host.startsWith('127.') || host === '::1';
  const found: Endpoint[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const host = m[1]!.replace(/%.*$/, '');
    const family = isIP(host);
    if (family === 0) continue;
    const loops = listen.some((l) => l.port === 53 &&
      (l.host === host || ((l.host === '0.0.0.0' || l.host === '::') && isLocal(host))));
    if (!loops) found.push({ host, port: 53, family: family as 4 | 6, label: endpointLabel(host, 53) });
  }
  return found;
}

/**
 * Flags (and the file they name) -> Config. Throws ConfigError with a one-line message.
 * `needUpstreams: false` is for commands that only read the rules (check, list).
 */
export function buildConfig(args: string[], { needUpstreams = true } = {}): Config {
  const { raw: flags, positional } = parseFlags(args);
  if (positional.length > 0) throw new ConfigError(`unexpected argument "${positional[0]}" (see "sinkhole serve --help")`);
  const configPath = flags.get('config')?.[0]?.value;
  const raw: RawSettings = configPath === undefined ? new Map() : parseConfigFile(configPath);
  for (const [name, values] of flags) raw.set(name, values); // flags override the file
  const one = (name: string, fallback: string): { value: string; where: string } =>
    raw.get(name)?.[0] ?? { value: fallback, where: `default ${name}` };

  const listenValues = raw.get('listen');
  const listen = (listenValues ?? [{ value: '127.0.0.1:5353', where: 'default' }, { value: '[::1]:5353', where: 'default' }])
    .map((v) => {
      const e = parseEndpoint(v.value, undefined);
      if ('error' in e) throw new ConfigError(`${v.where}: ${e.error}`);
      return e;
    });

  let upstreams: Endpoint[];
  let upstreamSource: string;
  const upstreamValues = raw.get('upstream');
  if (upstreamValues !== undefined) {
    upstreams = upstreamValues.map((v) => {
      const e = parseEndpoint(v.value, 53);
      if ('error' in e) throw new ConfigError(`${v.where}: ${e.error}`);
      return e;
    });
    upstreamSource = 'configuration';
  } else if (!needUpstreams) {
    upstreams = [];
    upstreamSource = 'none';
  } else {
    const resolvConf = one('resolv-conf', '/etc/resolv.conf').value;
    upstreams = upstreamsFromResolvConf(resolvConf, listen);
    upstreamSource = resolvConf;
    if (upstreams.length === 0) {
      throw new ConfigError(`no upstream resolver: ${resolvConf} names none that is not this server itself; pass --upstream ADDR (e.g. --upstream 192.0.2.1)`);
    }
  }
  for (const u of upstreams) {
    if (listen.some((l) => l.host === u.host && l.port === u.port)) {
      throw new ConfigError(`upstream ${u.label} is this server's own listen address (a forwarding loop); choose another --upstream`);
    }
  }

  const allowValues = raw.get('allow-net');
  let allowNets: Cidr[] | null;
  if (allowValues?.some((v) => v.value === 'any')) allowNets = null;
  else allowNets = cidrs(allowValues ?? DEFAULT_ALLOW_NETS.map((value) => ({ value, where: 'default allow-net' })));

  const logLevel = one('log-level', 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel.value)) {
    throw new ConfigError(`${logLevel.where}: log level "${logLevel.value}" must be one of ${LOG_LEVELS.join(', ')}`);
  }

  const cacheMinTtl = integer(one('cache-min-ttl', '0'), 0, 604800);
  const cacheMaxTtl = integer(one('cache-max-ttl', '86400'), 0, 604800);
  if (cacheMinTtl > cacheMaxTtl) throw new ConfigError(`cache-min-ttl (${cacheMinTtl}) is above cache-max-ttl (${cacheMaxTtl}); lower one of them`);

  const workers = integer(one('workers', '1'), 1, 64);

  return {
    listen,
    listenIsDefault: listenValues === undefined,
    upstreams,
    upstreamSource,
    blocklists: one('blocklists', './blocklists').value,
    sinkholeIpv4: address(one('sinkhole-ipv4', '127.0.0.1'), 4),
    sinkholeIpv6: address(one('sinkhole-ipv6', '::1'), 6),
    blockedTtl: integer(one('blocked-ttl', '10'), 0, 86400),
    cacheSize: integer(one('cache-size', '10000'), 0, 10_000_000),
    cacheMinTtl,
    cacheMaxTtl,
    servfailTtl: integer(one('servfail-ttl', '3'), 0, 30),
    upstreamTimeoutMs: integer(one('upstream-timeout', '1000'), 50, 10000),
    tcpIdleTimeoutMs: integer(one('tcp-idle-timeout', '10000'), 100, 600000),
    tcpMaxConnections: integer(one('tcp-max-connections', '256'), 1, 100000),
    logLevel: logLevel.value as LogLevel,
    allowNets,
    exemptClients: cidrs(raw.get('exempt-client') ?? []),
    workers,
    ...adminSettings(raw.get('admin')?.[0], raw.get('admin-token')?.[0]),
    queryLog: one('query-log', 'off').value === 'off' ? null : one('query-log', 'off').value,
    queryLogMode: queryLogMode(one('query-log-mode', 'all')),
  };
}

function queryLogMode(v: { value: string; where: string }): QueryLogMode {
  const mode = parseQueryLogMode(v.value);
  if (mode === null) throw new ConfigError(`${v.where}: "${v.value}" must be all, blocked or sample:N (e.g. sample:100)`);
  return mode;
}

function adminSettings(admin: { value: string; where: string } | undefined, token: { value: string; where: string } | undefined) {
  if (admin === undefined) return { admin: null, adminToken: token?.value ?? null };
  const endpoint = parseEndpoint(admin.value, undefined);
  if ('error' in endpoint) throw new ConfigError(`${admin.where}: ${endpoint.error}`);
  const loopback = endpoint.host.startsWith('127.') || endpoint.host === '::1';
  if (!loopback && token === undefined) {
    throw new ConfigError(`${admin.where}: the admin API on ${endpoint.label} would be reachable from the network; add --admin-token TOKEN or listen on 127.0.0.1`);
  }
  return { admin: endpoint, adminToken: token?.value ?? null };
}

export function serveHelp(): string {
  const lines = ['Usage: sinkhole serve [options]', '', 'Runs the DNS server in the foreground. Options (each also a `key value` line in --config FILE):', ''];
  for (const o of OPTIONS) {
    lines.push(`  --${o.name} ${o.arg}${o.repeatable ? '  (repeatable)' : ''}`);
    lines.push(`      ${o.help}`);
    lines.push(`      default: ${o.defaultText}`);
  }
  lines.push('', 'Signals: SIGTERM/SIGINT stop cleanly (exit 0); SIGHUP reloads the blocklists and reopens logs.');
  return lines.join('\n');
}
