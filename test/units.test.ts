// The small pure pieces: names <-> keys, endpoints, CIDRs, query types, rule lines, packed
// answers, the node flags.
import { readFileSync } from 'node:fs';
import t from 'tap';
import pino from 'pino';
import { BlockedQueryLog } from '../src/observe/blocked-log.js';
import { NODE_FLAGS } from '../src/main/node-flags.js';
import { cidrContains, clientBytes, parseCidr } from '../src/stages/policy/cidr.js';
import { parseRuleLine } from '../src/stages/policy/rule-line.js';
import { TopK } from '../src/observe/topk.js';
import { parseEndpoint } from '../src/net/endpoint.js';
import { addressBytes } from '../src/wire/answer.js';
import { parseQtype, qtypeName, rcodeName } from '../src/wire/constants.js';
import { keyToText, textToKey } from '../src/wire/names.js';
import {
  addressCount, addressLength, addressOffset, addressType, cnameCount, cnameTarget, packAnswer, relayPacked,
} from '../src/wire/packed-answer.js';
import { parseQuery, Query } from '../src/wire/query.js';
import { inspectResponse } from '../src/wire/response.js';

t.test('names: text -> key -> text', async (t) => {
  t.equal(textToKey('Messenger.Hotmail.COM.'), '\x09messenger\x07hotmail\x03com', 'lower-cased wire form, trailing dot dropped');
  t.equal(keyToText(textToKey('gateway.messenger.hotmail.com') as string), 'gateway.messenger.hotmail.com');
  t.equal(textToKey('bücher.example'), textToKey('xn--bcher-kva.example'), 'IDN in punycode');
  t.equal(textToKey('_dmarc.example.com'), '\x06_dmarc\x07example\x03com', 'underscores are allowed');
  t.match(textToKey('a..b'), { error: /empty label/ });
  t.match(textToKey(''), { error: /empty name/ });
  t.match(textToKey(`${'a'.repeat(64)}.com`), { error: /longer than 63/ });
  t.match(textToKey(Array.from({ length: 60 }, () => 'abcd').join('.')), { error: /longer than 255/ });
  t.match(textToKey('exa mple.com'), { error: /" " cannot be part of a host name/ });
  t.equal(keyToText(''), '.');
  t.equal(keyToText('\x03a.b\x01\x01'), 'a\\.b.\\001', 'dots and unprintable bytes inside labels are escaped');
});

t.test('endpoints', async (t) => {
  t.match(parseEndpoint('127.0.0.1:5353', undefined), { host: '127.0.0.1', port: 5353, family: 4, label: '127.0.0.1:5353' });
  t.match(parseEndpoint('[::1]:53', undefined), { host: '::1', port: 53, family: 6, label: '[::1]:53' });
  t.match(parseEndpoint('2001:db8::1', 53), { host: '2001:db8::1', port: 53, family: 6 });
  t.match(parseEndpoint('192.0.2.1', 53), { port: 53 });
  t.match(parseEndpoint('192.0.2.1', undefined), { error: /needs a port/ });
  t.match(parseEndpoint('dns.example:53', 53), { error: /not an IP address/ });
  t.match(parseEndpoint('192.0.2.1:x', 53), { error: /port "x"/ });
});

t.test('CIDRs and client addresses', async (t) => {
  const net = parseCidr('64.12.25.0/22');
  if ('error' in net) throw new Error(net.error);
  t.same([...net.bytes], [64, 12, 24, 0], 'host bits cleared');
  for (const [address, inside] of [['64.12.24.1', true], ['64.12.27.255', true], ['64.12.28.0', false], ['64.12.23.255', false]] as const) {
    t.equal(cidrContains(net, addressBytes(address), 0, 4), inside, `${address} ${inside ? 'in' : 'not in'} ${net.text}`);
  }
  const v6 = parseCidr('fc00::/7');
  if ('error' in v6) throw new Error(v6.error);
  t.ok(cidrContains(v6, addressBytes('fd12:3456::1'), 0, 16));
  t.notOk(cidrContains(v6, addressBytes('fe80::1'), 0, 16));
  t.notOk(cidrContains(v6, addressBytes('10.0.0.1'), 0, 4), 'families never mix');
  t.same([...clientBytes('::ffff:192.168.1.16')], [192, 168, 1, 16], 'IPv4-mapped clients are IPv4');
  t.same([...clientBytes('fe80::1%eth0')].slice(0, 2), [0xfe, 0x80], 'zone ids are dropped');
  t.match(parseCidr('10.0.0.0/33'), { error: /must be 0 to 32/ });
  t.match(parseCidr('nonsense/8'), { error: /not an IPv4 or IPv6 address/ });
  t.match(parseCidr('192.168.1.16'), { prefix: 32 }, 'a bare address is a /32');
});

t.test('query types and rcodes', async (t) => {
  t.equal(parseQtype('aaaa'), 28);
  t.equal(parseQtype('TYPE65'), 65);
  t.equal(parseQtype('65'), 65);
  t.equal(parseQtype('BOGUS'), undefined);
  t.equal(parseQtype('TYPE70000'), undefined);
  t.equal(qtypeName(65), 'HTTPS');
  t.equal(qtypeName(99), 'TYPE99');
  t.equal(rcodeName(3), 'NXDOMAIN');
  t.equal(rcodeName(11), 'RCODE11');
});

t.test('rule lines', async (t) => {
  t.match(parseRuleLine('  messenger.hotmail.com\t# MSN'), { kind: 'name', allow: false, keys: [textToKey('messenger.hotmail.com')] });
  t.match(parseRuleLine('@@login.live.com'), { kind: 'name', allow: true });
  t.match(parseRuleLine('@@||login.live.com^'), { kind: 'name', allow: true });
  t.match(parseRuleLine('||meebo.com^|'), { kind: 'name', keys: [textToKey('meebo.com')] });
  t.match(parseRuleLine('0.0.0.0 a.example b.example'), { kind: 'name', keys: [textToKey('a.example'), textToKey('b.example')] });
  t.match(parseRuleLine('::1 ip6-localhost ip6-loopback'), { kind: 'none' }, 'hosts preamble');
  t.match(parseRuleLine('ip:2001:db8::/32'), { kind: 'ip', cidr: { family: 6, prefix: 32 } });
  t.match(parseRuleLine('ip:300.1.1.1/8'), { kind: 'invalid' });
  t.match(parseRuleLine('mess*enger.com'), { kind: 'invalid', reason: /wildcard may only stand first/ });
  t.match(parseRuleLine('||meebo.com'), { kind: 'invalid', reason: /\|\|example\.com\^/ });
  t.match(parseRuleLine('0.0.0.0 good.example bad..example'), { kind: 'invalid' }, 'one bad name spoils a hosts line');
  t.match(parseRuleLine('! adblock comment'), { kind: 'none' });
  t.match(parseRuleLine('\r'), { kind: 'none' });
});

t.test('the rule set matcher: most specific rule, label boundaries, single-label rules', async (t) => {
  const { parseListText } = await import('../src/stages/policy/list-file.js');
  const { RuleSet, ruleOf, offsetOf } = await import('../src/stages/policy/ruleset.js');
  const key = (n: string) => textToKey(n) as string;
  const rules = new RuleSet([parseListText('a.txt', 'hotmail.com\n@@||mail.hotmail.com^\nx.mail.hotmail.com\n')]);
  const verdict = (n: string) => {
    const m = rules.match(key(n));
    return m < 0 ? 'none' : rules.isAllow(ruleOf(m)) ? 'allow' : 'block';
  };
  t.equal(verdict('hotmail.com'), 'block');
  t.equal(verdict('www.hotmail.com'), 'block');
  t.equal(verdict('mail.hotmail.com'), 'allow');
  t.equal(verdict('y.mail.hotmail.com'), 'allow');
  t.equal(verdict('x.mail.hotmail.com'), 'block');
  t.equal(verdict('nothotmail.com'), 'none');
  t.equal(verdict('com'), 'none');
  t.equal(verdict('example.org'), 'none');
  const tld = new RuleSet([parseListText('b.txt', 'zip\n')]);
  t.ok(tld.match(key('evil.zip')) >= 0, 'a single-label rule covers its whole TLD');
  t.equal(tld.match(key('zip.example')), -1);
  t.equal(new RuleSet([]).match(key('a.b')), -1, 'an empty rule set');

  // Only suffixes as deep as some rule under the same last two labels are looked up: rules
  // at several depths, beside a single-label rule, and deeper than the filter's 31 bits.
  const deep = Array.from({ length: 40 }, (_, i) => `l${i}`).join('.') + '.example.com';
  const mixed = new RuleSet([parseListText('c.txt', `example.com\na.b.c.example.com\n@@||b.c.example.com^\n${deep}\nzip\n`)]);
  const at = (n: string): string => {
    const m = mixed.match(key(n));
    return m < 0 ? 'none' : `${mixed.describe(ruleOf(m)).rule}@${offsetOf(m)}`;
  };
  t.equal(at('x.a.b.c.example.com'), 'a.b.c.example.com@2', 'the deepest rule, found first');
  t.equal(at('y.b.c.example.com'), 'b.c.example.com@2', 'a rule two depths up');
  t.equal(at('c.example.com'), 'example.com@2');
  t.equal(at('example.com'), 'example.com@0');
  t.equal(at(`x.${deep}`), `${deep}@2`, 'a rule of 42 labels');
  t.equal(at('evil.zip'), 'zip@5', 'the single-label rule, after the rest');
  t.equal(at('example.net'), 'none');
});

t.test('top-k: bounded memory, heavy hitters survive a flood of one-off keys', async (t) => {
  const top = new TopK(10);
  for (let i = 0; i < 50; i++) top.add('heavy');
  for (let i = 0; i < 20; i++) top.add('second');
  let largest = 0;
  for (let i = 0; i < 10_000; i++) {
    top.add(`once-${i}`);
    largest = Math.max(largest, top.entries().length);
  }
  t.equal(largest, 10, 'never more keys than its capacity');
  t.same(top.top(2), [{ key: 'heavy', count: 50 }, { key: 'second', count: 20 }]);
  top.add('heavy');
  t.equal(top.top(1)[0]!.count, 51, 'a kept key keeps counting');
});

t.test('re-parsing a file against its previous version: grown, shrunk, edited', async (t) => {
  const { parseListText, parseSteps } = await import('../src/stages/policy/list-file.js');
  const reparse = (previous: string[], text: string) => {
    const steps = parseSteps('x.allow.txt', Buffer.from(text), 0, text.length, false, previous);
    let step = steps.next();
    while (!step.done) step = steps.next();
    return step.value;
  };
  const names = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `n${i + from}.example`);
  const before = parseListText('x.allow.txt', names(3000).join('\n') + '\n');
  // Appended past the preallocated room (previous + 1024): the typed arrays grow.
  const grown = reparse(before.keys, names(6000).join('\n') + '\n');
  t.equal(grown.keys.length, 6000);
  t.equal(grown.lines.length, 6000);
  t.equal(grown.lines[5999], 6000, 'line numbers follow');
  t.ok(grown.allow.every((a) => a === 1), 'allow flags from the .allow.txt name');
  t.equal(grown.keys[4000], parseListText('y.txt', 'n4000.example\n').keys[0]);
  const shrunk = reparse(grown.keys, ['# now short', ...names(2, 10)].join('\n') + '\n');
  t.equal(shrunk.keys.length, 2, 'no leftovers from the longer version');
  t.same([...shrunk.lines], [2, 3]);
  t.same(shrunk.keys, parseListText('y.txt', names(2, 10).join('\n')).keys, 'edited keys are the new ones');
  t.equal(grown.keys.length, 6000, 'the previous version is left as it was');
});

t.test('packed answers: CNAME targets through compression pointers, addresses, TTLs aged on relay', async (t) => {
  // www.example.com A: CNAME cdn.example.com (compressed against the question), then its A.
  const question = Buffer.concat([Buffer.from('\x03www\x07example\x03com\x00', 'latin1'), Buffer.from([0, 1, 0, 1])]);
  const header = Buffer.from([0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]);
  // CNAME rdata "cdn" + pointer to "example.com" at offset 16 of the message.
  const cname = Buffer.concat([Buffer.from([0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 6]), Buffer.from('\x03cdn', 'latin1'), Buffer.from([0xc0, 16])]);
  const a = Buffer.from([0xc0, 43, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
  const wire = Buffer.concat([header, question, cname, a]);
  const info = inspectResponse(wire, header.length + question.length);
  if (info === null) throw new Error('inspectResponse refused a good answer');
  const storedAt = Date.now() - 10_500;
  const packed = packAnswer(wire, info, storedAt);
  t.equal(cnameCount(packed), 1);
  t.equal(cnameTarget(packed, 0), '\x03cdn\x07example\x03com', 'the pointer counts from the answer inside the pack, not from the pack');
  t.equal(addressCount(packed), 1);
  t.equal(addressType(packed, 0), 1);
  t.equal(addressLength(packed, 0), 4);
  t.same([...packed.subarray(addressOffset(packed, 0), addressOffset(packed, 0) + 4)], [192, 0, 2, 7]);

  const query = Buffer.concat([Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from('\x03WwW\x07example\x03com\x00', 'latin1'), Buffer.from([0, 1, 0, 1])]);
  const q = parseQuery(query);
  if (!(q instanceof Query)) throw new Error('parseQuery refused a good query');
  const out = relayPacked(q, packed, storedAt + 10_500, true);
  t.equal(out.readUInt16BE(0), 0xabcd, "the client's ID");
  t.equal(out.toString('latin1', 13, 16), 'WwW', "the client's exact qname case");
  t.equal(out.readUInt32BE(wire.indexOf(Buffer.from([0, 0, 0x0e, 0x10]))), 3600 - 10, 'CNAME TTL lowered by the 10 whole seconds since storing');
  t.equal(out.readUInt32BE(wire.length - 10), 60 - 10, 'A TTL lowered too');
  t.equal(out.length, wire.length);
  const small = parseQuery(query);
  if (!(small instanceof Query)) throw new Error('parseQuery refused a good query');
  small.udpLimit = 40;
  const truncated = relayPacked(small, packed, storedAt, true);
  t.equal(truncated.readUInt16BE(2) & 0x0200, 0x0200, 'too big for the client: TC set');
  t.equal(truncated.readUInt16BE(6), 0, 'and no partial records');
});

t.test('the node flags serve runs with are the same everywhere it is started', async (t) => {
  const flags = NODE_FLAGS.join(' ');
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  t.match(pkg.scripts.start, `node ${flags} dist/main/cli.js serve`, 'npm start');
  t.match(readFileSync(new URL('../systemd/install.sh', import.meta.url), 'utf8'), `${flags} "$app/dist/main/cli.js"`, 'the installed wrapper');
  // Every sinkhole the benchmark measures (throughput, latency, reload) is started by this one function.
  t.match(readFileSync(new URL('../bench/processes.ts', import.meta.url), 'utf8'), "[...NODE_FLAGS, ...nodeFlags, CLI, 'serve', ", 'the benchmark');
  for (const file of ['run.ts', 'reload.ts']) {
    t.notMatch(readFileSync(new URL(`../bench/${file}`, import.meta.url), 'utf8'), /startPinned\([^)]*execPath/, `bench/${file} starts no node process by itself`);
  }
});

t.test('the blocked-query log: a line per distinct name and client, then only counts', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ base: undefined }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const blocked = new BlockedQueryLog(log, 60_000, 3);
  const query = (client: string, qname: string) => () => ({ client, qname, qtype: 'A', rule: 'x.txt:1', bundle: 'x' });
  for (const name of ['a', 'b', 'c', 'd', 'e', 'a', 'a']) blocked.record('10.0.0.1', name, query('10.0.0.1', name));
  blocked.record('10.0.0.2', 'a', query('10.0.0.2', 'a'));
  t.same(lines.map((l) => `${l.msg} ${l.client} ${l.qname}`), ['blocked 10.0.0.1 a', 'blocked 10.0.0.1 b', 'blocked 10.0.0.1 c', 'blocked 10.0.0.2 a'],
    'three lines for the first client (its limit), its own line for the second');
  lines.length = 0;
  blocked.flush();
  t.match(lines, [
    { msg: 'blocked (repeated)', client: '10.0.0.1', qname: 'a', repeats: 2, seconds: 60 },
    { msg: 'blocked (more queries from this client, not logged one by one)', client: '10.0.0.1', suppressed: 2 },
  ]);
  t.equal(lines.length, 2, 'nothing for what was logged once');
  lines.length = 0;
  blocked.record('10.0.0.1', 'd', query('10.0.0.1', 'd'));
  t.match(lines, [{ msg: 'blocked', qname: 'd' }], 'a new interval starts afresh');
  blocked.flush();
});
