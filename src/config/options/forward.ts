// Where queries that are not blocked or cached go (the forward stage).
import { ConfigError } from '../errors.js';
import { list, option } from '../option.js';
import { upstreamsFromResolvConf } from '../resolv-conf.js';
import { text, upstreamUrl, wholeNumber } from '../values.js';
import { Invalid, type ValueType } from '../option.js';
import { textToKey } from '../../wire/names.js';
import { parseUpstream, type UpstreamSpec } from '../../stages/forward/upstream-url.js';

/** A forward-zone: its name (text and key) and its upstreams (plain, tls:// or https://, as --upstream). */
export interface ForwardZone {
  zone: string;
  key: string;
  upstreams: UpstreamSpec[];
}

/** `DOMAIN UPSTREAM [UPSTREAM ...]` (config file) or `DOMAIN=UPSTREAM[,UPSTREAM]` (flag). */
export const forwardZoneValue: ValueType<ForwardZone> = {
  parse: (t) => {
    const [zone = '', ...rest] = t.trim().split(/[\s=,]+/);
    const key = textToKey(zone);
    if (typeof key !== 'string') return new Invalid(`"${zone}" is not a domain: ${key.error} (e.g. forward-zone corp.example 192.168.1.5)`);
    if (rest.length === 0) return new Invalid(`forward-zone ${zone} names no upstream (e.g. forward-zone ${zone} 192.168.1.5)`);
    const upstreams: UpstreamSpec[] = [];
    for (const u of rest) {
      const spec = parseUpstream(u);
      if ('error' in spec) return new Invalid(`forward-zone ${zone}: ${spec.error}`);
      upstreams.push(spec);
    }
    return { zone: zone.toLowerCase().replace(/\.$/, ''), key, upstreams };
  },
};
import type { Area } from './area.js';

export const upstream = list({
  name: 'upstream', arg: 'IP[:PORT]|tls://IP[:853]#NAME|https://HOST/PATH', value: upstreamUrl, default: [], commands: ['serve', 'check'], field: 'upstreams',
  defaultText: 'the nameservers in /etc/resolv.conf, less this server\'s own addresses',
  help: 'resolver to forward to, tried in turn on failure; port 53 if left out; tls:// for DNS over TLS, https:// for DNS over HTTPS',
  details: 'Plain upstreams are IP addresses only: a DNS server must not need DNS to start. ' +
    'A tls:// or https:// upstream is verified against the system\'s CAs (and --upstream-ca) for NAME, or HOST; ' +
    'a HOST name is looked up through --bootstrap. See docs/encrypted-dns.md.',
});

export const upstreamTimeout = option({
  name: 'upstream-timeout', arg: 'MS', value: wholeNumber(50, 10000), default: '1000', commands: ['serve', 'check'], field: 'upstreamTimeoutMs',
  help: 'longest wait for an upstream before asking again (adapts to its round-trip time)',
});

export const upstreamPortReuse = option({
  name: 'upstream-port-reuse', arg: 'N', value: wholeNumber(1, 256), default: '1', commands: ['serve'], field: 'upstreamPortReuse',
  help: 'queries sent from one random UDP source port before it is closed (1: a fresh port for every query, RFC 5452)',
  details: 'Above 1, up to 16 ports per upstream are in use at once, a query takes one at random with its own random ID, ' +
    'and a port takes no new query after 1 s. It saves the socket\'s opening and closing (most of a forwarded query\'s ' +
    'system calls) at the price of ports that live longer: an attacker who learns one (on the wire, or through an ICMP ' +
    'side channel such as SADDNS) can aim forged answers at it for longer. Keep 1 unless the upstream is on a network you trust ' +
    'and forwarding is the bottleneck; see docs/limits.md.',
});

export const resolvConf = option({
  name: 'resolv-conf', arg: 'FILE', value: text, default: '/etc/resolv.conf', commands: ['serve', 'check'], field: 'resolvConf',
  help: 'where to find nameservers when no --upstream is given',
});

export const forwardZone = list({
  name: 'forward-zone', arg: 'DOMAIN=UPSTREAM[,UPSTREAM]', value: forwardZoneValue, default: [], commands: ['serve', 'check'], field: 'forwardZones',
  help: 'send queries for DOMAIN and the names below it to these upstreams (the most specific zone wins)',
  details: 'In the config file: forward-zone DOMAIN UPSTREAM [UPSTREAM ...]. An UPSTREAM is written as for --upstream: IP[:PORT], tls://IP[:853]#NAME or https://HOST/PATH (verified with --upstream-ca, names looked up through --bootstrap). Blocking still applies first; the same failover, retransmission and 4 s bound as the default upstreams. Typical: forward-zone corp.example 192.168.1.5 192.168.1.6 (an Active Directory domain), forward-zone 168.192.in-addr.arpa 192.168.1.1 (a router\'s reverse zone).',
});

export const forwardArea: Area = {
  title: 'Upstreams',
  options: [upstream, upstreamTimeout, upstreamPortReuse, resolvConf, forwardZone],
  finish: (config, settings, ctx) => {
    if (settings.isSet(upstream)) config.upstreamSource = 'configuration';
    else if (!ctx.needUpstreams) config.upstreamSource = 'none';
    else {
      config.upstreams = upstreamsFromResolvConf(config.resolvConf, config.listen).map((endpoint) => ({ kind: 'udp', endpoint, label: endpoint.label }));
      config.upstreamSource = config.resolvConf;
      if (config.upstreams.length === 0) {
        throw new ConfigError(`no upstream resolver: ${config.resolvConf} names none that is not this server itself; pass --upstream ADDR (e.g. --upstream 192.0.2.1)`);
      }
    }
    const plain = [...config.upstreams, ...config.forwardZones.flatMap((z) => z.upstreams)].flatMap((u) => (u.kind === 'udp' ? [u.endpoint] : []));
    for (const u of plain) {
      if (config.listen.some((l) => l.host === u.host && l.port === u.port)) {
        throw new ConfigError(`upstream ${u.label} is this server's own listen address (a forwarding loop); choose another --upstream`);
      }
    }
  },
};
