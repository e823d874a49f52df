// How the benchmark configures the servers it starts beside sinkhole: nsd as the upstream
// every server forwards to, dnsmasq and Unbound as the references. Kept apart from run.ts
// so that a test (test/bench/servers.test.ts) can start them exactly as the benchmark does
// and check they do the work their figures are read as.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FORWARD_DOMAIN } from './generate.js';

/** The upstream's wildcard A record: what a forwarded name is answered with. */
export const UPSTREAM_A = '192.0.2.1';

/**
 * nsd.conf for the upstream: authoritative for FORWARD_DOMAIN with a wildcard A and AAAA on
 * 127.0.0.1:`port`. It reads with recvmmsg and answers ~120k q/s on one core, so W4 measures
 * the forwarders, not the upstream (a dnsmasq upstream dropped packets at its socket at
 * ~30k q/s). Response rate limiting is off: every query comes from 127.0.0.1.
 */
export function writeNsdConfig(dir: string, port: number): string {
  const zone = join(dir, `${FORWARD_DOMAIN}.zone`);
  writeFileSync(zone, [`$ORIGIN ${FORWARD_DOMAIN}.`, '$TTL 3600', `@ IN SOA ns.${FORWARD_DOMAIN}. admin.${FORWARD_DOMAIN}. 1 3600 600 86400 3600`,
    `@ IN NS ns.${FORWARD_DOMAIN}.`, 'ns IN A 127.0.0.1', `* IN A ${UPSTREAM_A}`, '* IN AAAA 2001:db8::1', ''].join('\n'));
  const conf = join(dir, 'nsd.conf');
  writeFileSync(conf, ['server:', '  ip-address: 127.0.0.1', `  port: ${port}`, '  username: ""', '  chroot: ""',
    `  zonesdir: "${dir}"`, '  database: ""', `  zonelistfile: "${join(dir, 'nsd-zone.list')}"`, `  pidfile: "${join(dir, 'nsd.pid')}"`,
    `  xfrdfile: "${join(dir, 'nsd-xfrd.state')}"`, `  xfrdir: "${dir}"`, `  logfile: "${join(dir, 'nsd.log')}"`, '  server-count: 1',
    '  verbosity: 0', '  rrl-ratelimit: 0', '  rrl-whitelist-ratelimit: 0', 'remote-control:', '  control-enable: no',
    'zone:', `  name: ${FORWARD_DOMAIN}`, `  zonefile: ${zone}`, ''].join('\n'));
  return conf;
}

/**
 * unbound.conf as an admin who wants speed would run it in front of the same upstream: one
 * thread, the same list as redirect zones (`listsConf`, from writeLists), everything else
 * forwarded, no DNSSEC validation (neither of the others validates), a cache large enough
 * for every workload, and a 4 MB socket receive buffer as sinkhole sets (Unbound's tuning
 * guide says so; with the default 208 KB it drops most of dnsperf's opening burst of 2,000
 * queries, as dnsmasq does).
 */
export function writeUnboundConfig(dir: string, listsConf: string, port: number, upstreamPort: number): string {
  const conf = join(dir, 'unbound.conf');
  writeFileSync(conf, ['server:', '  interface: 127.0.0.1', `  port: ${port}`, '  do-ip6: no', '  num-threads: 1',
    '  username: ""', '  chroot: ""', `  directory: "${dir}"`, '  pidfile: ""', '  use-syslog: no', `  logfile: "${join(dir, 'unbound.log')}"`,
    '  verbosity: 0', '  module-config: "iterator"', '  do-not-query-localhost: no', '  qname-minimisation: no',
    '  num-queries-per-thread: 4096', '  outgoing-range: 8192', '  msg-cache-size: 32m', '  rrset-cache-size: 64m', '  so-rcvbuf: 4m',
    '  access-control: 127.0.0.0/8 allow',
    // test. is one of Unbound's default local zones (RFC 6761): without this line it answers
    // every *.bench.test query NXDOMAIN from memory and forwards none. Until 2026-12-02 it
    // did, and its W2-W4 figures measured that (docs/performance.md).
    `  local-zone: "${FORWARD_DOMAIN.split('.').pop()}." nodefault`, `  include: "${listsConf}"`,
    'forward-zone:', '  name: "."', `  forward-addr: 127.0.0.1@${upstreamPort}`, 'remote-control:', '  control-enable: no', ''].join('\n'));
  return conf;
}

/** dnsmasq's arguments: the same upstream, the same list (`listsConf`, address= lines), a 10,000-entry cache. */
export function dnsmasqArgs(dir: string, listsConf: string, port: number, upstreamPort: number): string[] {
  return ['--keep-in-foreground', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', `--server=127.0.0.1#${upstreamPort}`, '--cache-size=10000', '--dns-forward-max=10000',
    `--conf-file=${listsConf}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`];
}
