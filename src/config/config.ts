// Settings -> one validated, typed Config. The options are declared once, by area, in
// options/*.ts; flags (`--key value`) override the config file (`key value` lines), which
// overrides the declared defaults. A bad value stops startup with one line saying where
// and what to do.
import type { Cidr } from '../stages/policy/cidr.js';
import type { LogLevel } from '../observe/log.js';
import type { QueryLogMode } from '../observe/query-log.js';
import type { Endpoint } from '../net/endpoint.js';
import type { UpstreamSpec } from '../stages/forward/upstream-url.js';
import { READS_CONFIG, type CommandName } from './command.js';
import { ConfigError } from './errors.js';
import type { Option } from './option.js';
import type { ForwardZone } from './options/forward.js';
import type { PolicySettings } from '../stages/policy/group-setup.js';
import { AREAS } from './options/index.js';
import { defaultConfig } from './paths.js';
import { parseCommandLine, parseConfigFile, Settings } from './settings.js';

export { ConfigError, UnreachableError } from './errors.js';
export { upstreamsFromResolvConf } from './resolv-conf.js';
export { DEFAULT_ALLOW_NETS } from './options/guard.js';

export interface Config {
  listen: Endpoint[];
  /** True when `listen` is the built-in default: a missing IPv6 loopback is then only a warning. */
  listenIsDefault: boolean;
  /** Plain (IP[:PORT]) and encrypted (tls://, https://) upstreams, in the order given. */
  upstreams: UpstreamSpec[];
  /** Where the upstreams came from, for the startup log. */
  upstreamSource: string;
  /** Where upstreams are looked for when none are configured. */
  resolvConf: string;
  blocklists: string;
  sinkholeIpv4: string;
  sinkholeIpv6: string;
  blockedTtl: number;
  cacheSize: number;
  cacheMinTtl: number;
  cacheMaxTtl: number;
  servfailTtl: number;
  upstreamTimeoutMs: number;
  /** Queries one UDP source port carries toward the upstreams (1: a fresh port per query). */
  upstreamPortReuse: number;
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
  forwardZones: ForwardZone[];
  anyQueries: 'minimal' | 'forward';
  privateReverse: 'local' | 'forward';
  hostsFiles: string[];
  localDomain: string | null;
  /** `client-names` files: DHCP leases or hosts files naming clients (src/observe/client-names.ts). */
  clientNames: string[];
  adminHostnames: string[];
  /** DoT and DoH listeners (options/encrypted.ts); they need tlsCert and tlsKey. */
  listenTls: Endpoint[];
  listenHttps: Endpoint[];
  tlsCert: string | null;
  tlsKey: string | null;
  /** An extra CA for tls:// and https:// upstreams. */
  upstreamCa: string | null;
  /** Plain DNS servers that look up upstreams given by name. */
  bootstrap: Endpoint[];
  staleMaxAge: number;
  tcpMaxPerClient: number;
  /** The guard stage's rate limiter (options/limits.ts). */
  rateLimit: number;
  rateBurst: number;
  networkRateLimit: number;
  maxInflightPerClient: number;
  maxInflight: number;
  rateExempt: Cidr[];
  /** UDP queries that waited longer in the receive queue are dropped (0: never). */
  udpMaxWaitMs: number;
  /** Pause state and downloaded lists. */
  stateDir: string;
  /** group, schedule, block, allow and list-url lines (options/groups.ts). */
  policy: PolicySettings;
  history: 'blocked' | 'all' | 'off';
  historyDays: number;
  /** The fleet (options/fleet.ts, src/fleet/): null = a single node. */
  redis: string | null;
  redisPasswordFile: string | null;
  redisCa: string | null;
  nodeName: string;
  site: string;
  fleetRole: 'primary' | 'replica';
}

/** The options of the server and its config file, by area; commands declare their own beside them. */
export const SERVER_OPTIONS: readonly Option[] = AREAS.flatMap((a) => a.options);

export interface CommandInput {
  settings: Settings;
  operands: string[];
  help: boolean;
  /** The config file read, if any. */
  configFile: string | null;
}

/** `sinkhole COMMAND args`: flags, operands and the config file (--config, or the default one). */
export function readCommandLine(command: CommandName, args: readonly string[], own: readonly Option[] = []): CommandInput {
  const line = parseCommandLine(command, args, [...SERVER_OPTIONS, ...own]);
  if (line.help) return { settings: new Settings(line.flags, new Map()), operands: line.operands, help: true, configFile: null };
  const path = line.flags.get('config')?.[0]?.value ?? (READS_CONFIG.includes(command) ? defaultConfig().path : null);
  const file = path === null ? new Map() : parseConfigFile(path, SERVER_OPTIONS);
  return { settings: new Settings(line.flags, file), operands: line.operands, help: false, configFile: path };
}

/**
 * Settings -> Config: every declared field, then each area's derived fields and checks.
 * `needUpstreams: false` is for commands that only read the rules (check, list).
 */
export function configFrom(settings: Settings, { needUpstreams = true } = {}): Config {
  const fields: Record<string, unknown> = { listenIsDefault: false, upstreamSource: 'configuration' };
  for (const o of SERVER_OPTIONS) if (o.field !== null) fields[o.field] = settings.get(o);
  const config = fields as unknown as Config;
  for (const area of AREAS) area.finish?.(config, settings, { needUpstreams });
  return config;
}

/** Flags of `sinkhole serve` (and the file they name) -> Config. Throws ConfigError with a one-line message. */
export function buildConfig(args: string[], { needUpstreams = true } = {}): Config {
  const { settings, operands } = readCommandLine('serve', args);
  if (operands.length > 0) throw new ConfigError(`unexpected argument "${operands[0]}" (see "sinkhole serve --help")`);
  return configFrom(settings, { needUpstreams });
}
