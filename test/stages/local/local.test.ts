// The local stage through a real pipeline: RFC 6303 zones answered NXDOMAIN with the
// zone's SOA, hosts-file names (A, AAAA, PTR) and their edits, ANY minimal, and forward
// zones taking precedence over the private zones.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import type { Transport } from '../../../src/net/transport.js';
import { Pipeline } from '../../../src/pipeline/pipeline.js';
import type { Stage } from '../../../src/pipeline/stage.js';
import { HostsSource, parseHosts, reverseName } from '../../../src/stages/local/hosts.js';
import { privateZoneMap } from '../../../src/stages/local/private-zones.js';
import { LocalStage, type LocalOptions } from '../../../src/stages/local/stage.js';
import { buildTemplates, queryEmptyAnswer } from '../../../src/wire/answer.js';
import { RCODE } from '../../../src/wire/constants.js';
import { mustKey } from '../../../src/wire/names.js';
import { ZoneMap } from '../../../src/wire/zone-map.js';
import { buildQuery, decode, T } from '../../helpers/dns.js';

const log = pino({ level: 'silent' });
const templates = buildTemplates('127.0.0.1', '::1', 10);

function chain(options: Partial<LocalOptions>) {
  const forwarded: string[] = [];
  const last: Stage = {
    name: 'upstream',
    onQuery(q, p) {
      forwarded.push(q.qnameKey);
      p.reply(q, queryEmptyAnswer(q, RCODE.NOERROR), 'forwarded');
      return 0;
    },
  };
  const local = new LocalStage({ anyQueries: 'minimal', privateZones: privateZoneMap(), forwardZones: null, hosts: null, templates, ...options });
  const pipeline = new Pipeline([local, last], log);
  const ask = (name: string, type: number) => {
    let out: Buffer | null = null;
    const transport: Transport = { udp: true, send: (b) => (out = b) };
    pipeline.handle(buildQuery(name, type), '127.0.0.1', 1, transport);
    return decode(out!);
  };
  return { ask, forwarded };
}

t.test('private reverse zones and home.arpa: NXDOMAIN with the zone\'s SOA, nothing forwarded', async (t) => {
  const { ask, forwarded } = chain({});
  for (const name of ['5.1.168.192.in-addr.arpa', '1.0.0.10.in-addr.arpa', '1.0.0.127.in-addr.arpa', '7.0.16.172.in-addr.arpa',
    '1.2.64.100.in-addr.arpa', '4.3.254.169.in-addr.arpa', 'printer.home.arpa',
    `${'1.'.repeat(31)}d.f.ip6.arpa`, `${'0.'.repeat(28)}0.8.e.f.ip6.arpa`]) {
    const r = ask(name, T.PTR);
    t.equal(r.rcode, RCODE.NXDOMAIN, `${name}: NXDOMAIN`);
    t.equal(r.authority[0]?.type, T.SOA, `${name}: an SOA`);
  }
  t.equal(ask('168.192.in-addr.arpa', T.SOA).rcode, RCODE.NOERROR, 'the zone apex exists (NODATA)');
  t.equal(ask('5.1.168.192.in-addr.arpa', T.PTR).authority[0]?.name, '168.192.in-addr.arpa', 'the SOA is owned by the zone');
  t.same(forwarded, [], 'none of them went upstream');
  ask('8.8.8.8.in-addr.arpa', T.PTR);
  ask('1.0.32.172.in-addr.arpa', T.PTR);
  ask('www.example.org', T.A);
  t.equal(forwarded.length, 3, 'public reverse names (and 172.32/16, outside 172.16/12) go upstream');
});

t.test('a forward-zone covering a private zone wins; private-reverse forward turns them off', async (t) => {
  const zones = new ZoneMap<string>();
  zones.set(mustKey('168.192.in-addr.arpa'), 'router');
  const routed = chain({ forwardZones: zones });
  routed.ask('1.1.168.192.in-addr.arpa', T.PTR);
  t.equal(routed.forwarded.length, 1, 'the router\'s reverse zone is forwarded');
  t.equal(routed.ask('1.0.0.10.in-addr.arpa', T.PTR).rcode, RCODE.NXDOMAIN, 'the others stay local');
  const off = chain({ privateZones: null });
  off.ask('1.0.0.10.in-addr.arpa', T.PTR);
  t.equal(off.forwarded.length, 1);
});

t.test('hosts files: A, AAAA, PTR, aliases, local domain, bad lines, edits while running', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hosts-'));
  const file = join(dir, 'hosts');
  writeFileSync(file, '# office\n192.168.1.10  nas.corp.example nas\n192.168.1.20 printer\nfd00::20 printer\nnot-an-ip foo\n192.168.1.30 bad..name good\n');
  const warnings: string[] = [];
  const hosts = new HostsSource([file], 'lan', { warn: (_o: unknown, m: string) => warnings.push(m), info: () => undefined } as never, 50);
  await hosts.start();
  t.teardown(() => hosts.close());
  const { ask, forwarded } = chain({ hosts });
  t.same(ask('nas.corp.example', T.A).answers.map((r) => r.text), ['192.168.1.10']);
  t.same(ask('NAS', T.A).answers.map((r) => r.text), ['192.168.1.10'], 'an alias, any case');
  t.same(ask('printer.lan', T.AAAA).answers.map((r) => r.text), ['fd00::20'], 'the local domain added to a bare name');
  t.equal(ask('nas', T.AAAA).answers.length, 0, 'a local name without an AAAA: NODATA, not forwarded');
  t.equal(ask('nas', T.A).answers[0]?.ttl, 30, 'a short TTL');
  const ptr = ask(reverseName('192.168.1.10'), T.PTR);
  t.equal(ptr.answers[0]?.text, 'nas.corp.example', 'PTR: the first name on the line');
  t.equal(ask(reverseName('192.168.1.20'), T.PTR).answers[0]?.text, 'printer.lan', 'PTR of a bare name: qualified');
  t.equal(ask('good', T.A).answers[0]?.text, '192.168.1.30', 'a line with one bad name keeps the good one');
  t.same(forwarded, []);
  t.match(warnings, [/hosts\.:?.*:5: "not-an-ip" is not an IP address|hosts line skipped: .*hosts:5/, /hosts:6/], 'bad lines named with file:line');

  writeFileSync(file, '192.168.1.11 nas\n');
  await new Promise((r) => setTimeout(r, 300));
  t.same(ask('nas', T.A).answers.map((r) => r.text), ['192.168.1.11'], 'an edit is picked up while running');
  ask('printer', T.A);
  t.equal(forwarded.length, 1, 'a removed name goes upstream again');
});

t.test('parseHosts: the table, without files', async (t) => {
  const { table, problems } = parseHosts([{ path: 'h', text: '10.0.0.1 a.example\n10.0.0.1 b.example\n' }], null);
  t.equal(table.names.size, 2);
  t.equal(table.reverse.size, 1, 'one PTR per address: the first line wins');
  t.same(problems, []);
});

t.test('ZoneMap: the most specific zone, label boundaries only', async (t) => {
  const m = new ZoneMap<string>();
  m.set(mustKey('corp.example'), 'corp');
  m.set(mustKey('lab.corp.example'), 'lab');
  const at = (n: string): string => {
    const i = m.match(mustKey(n));
    return i < 0 ? 'none' : m.valueOf(i);
  };
  t.equal(at('dc1.corp.example'), 'corp');
  t.equal(at('x.lab.corp.example'), 'lab');
  t.equal(at('corp.example'), 'corp');
  t.equal(at('notcorp.example'), 'none', 'label boundaries');
  t.equal(at('www.example.org'), 'none');
});
