// Client names in the running server, over real sockets, with clients at several 127.0.0.x
// source addresses (Linux routes all of 127/8 to lo): a dnsmasq leases file and a dhcpd
// leases file name them; the names show in the blocked-query log line, the query log,
// /api/stats, `sinkhole stats` and `sinkhole report`; a group given by name; the DHCP names
// answer A and PTR with local-domain; a leases file replaced while the server runs changes
// names, groups and local answers within 5 s.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, startSinkhole, type TestServer } from '../helpers/server.js';
import { startUpstream, type Handler } from '../helpers/upstream.js';
import { ConfigError } from '../../src/config/config.js';
import { policySettingsFrom } from '../../src/stages/policy/group-setup.js';
import { runReport } from '../../src/main/commands/report.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const real: Handler = (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] });

const CEO = '127.0.3.2';
const ANNA = '127.0.3.3';
const PRINTER = '127.0.3.4';
const NOBODY = '127.0.3.9';

const dir = mkdtempSync(join(tmpdir(), 'sinkhole-names-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const dnsmasq = join(dir, 'dnsmasq.leases');
const dhcpd = join(dir, 'dhcpd.leases');
const queryLog = join(dir, 'queries.log');
const stateDir = join(dir, 'state');

/** Replaces a file the way dnsmasq and editors do: a new file renamed over the old one. */
function replace(path: string, text: string): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

const policy = (text: string) => policySettingsFrom(text.trim().split('\n').map((line, i) => {
  const m = /^(\S+)\s+(.*)$/.exec(line.trim())!;
  return { name: m[1]!, value: m[2]!, where: `office.conf:${i + 1}` };
}), null);

const verdict = async (s: TestServer, name: string, from: string) => {
  const r = await ask(s.port, name, T.A, { from });
  return r.answers[0]?.text === '127.0.0.1' ? 'blocked' : r.answers[0]?.text === '192.0.2.7' ? 'allowed' : `odd ${JSON.stringify(r.answers)}`;
};

async function until(what: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return what();
}

t.test('a group given by name needs client-names', async (t) => {
  const upstream = await startUpstream(real);
  t.teardown(() => upstream.close());
  await t.rejects(startSinkhole({ upstream: upstream.address, lists: { 'whatsapp.txt': 'whatsapp.example\n' }, policy: policy('group boss laptop-ceo\nblock boss none') }),
    new ConfigError('office.conf:1: group boss: "laptop-ceo" is a client name and no client-names file is given; add "client-names /var/lib/misc/dnsmasq.leases" (or a hosts file), or give an address'));
  t.throws(() => policy('group boss 192.168.1.300'), /office.conf:1: group boss: .*give an IP address, a network such as 192.168.1.0\/24 or a client name/);
});

t.test('names from dnsmasq and dhcpd leases: log line, query log, /api/stats, stats, report, groups, local-domain, edits', async (t) => {
  writeFileSync(dnsmasq, `1764550000 aa:bb:cc:dd:ee:01 ${CEO} laptop-ceo *\n1764550000 aa:bb:cc:dd:ee:02 ${ANNA} phone-anna 01:aa:bb:cc:dd:ee:02\nthis line is bad\n`);
  writeFileSync(dhcpd, `lease ${PRINTER} {\n  binding state active;\n  client-hostname "printer-2";\n}\n`);
  const upstream = await startUpstream(real);
  const adminPort = await freePort();
  const s = await startSinkhole({
    upstream: upstream.address, lists: { 'whatsapp.txt': '# WhatsApp\nwhatsapp.example\n' },
    policy: policy('group boss laptop-ceo\nblock boss none'),
    args: ['--client-names', dnsmasq, '--client-names', dhcpd, '--admin', `127.0.0.1:${adminPort}`, '--query-log', queryLog,
      '--local-domain', 'lan', '--state-dir', stateDir, '--history', 'blocked'],
  });
  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= s.close());
  t.teardown(async () => {
    await stop();
    await upstream.close();
  });
  t.ok(s.logs.some((l) => String(l.msg).startsWith(`client-names line skipped: ${dnsmasq}:3:`)), 'a bad line is skipped with file:line');

  // Groups by name: laptop-ceo is in boss (nothing blocked), the others in default.
  t.equal(await verdict(s, 'whatsapp.example', CEO), 'allowed', 'laptop-ceo is in group boss');
  t.equal(await verdict(s, 'whatsapp.example', ANNA), 'blocked');
  t.equal(await verdict(s, 'whatsapp.example', PRINTER), 'blocked');
  t.equal(await verdict(s, 'whatsapp.example', NOBODY), 'blocked');

  // The blocked-query log line.
  const blocked = (client: string) => s.logs.find((l) => l.msg === 'blocked' && l.client === client);
  t.equal(blocked(ANNA)?.clientName, 'phone-anna', 'dnsmasq name in the blocked line');
  t.equal(blocked(PRINTER)?.clientName, 'printer-2', 'dhcpd name in the blocked line');
  t.equal(blocked(NOBODY)?.clientName, undefined, 'no name, no field');

  // The query log.
  // Complete lines only: the server may be half-way through writing the last one.
  const lines = () => {
    const text = readFileSync(queryLog, 'utf8');
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  t.ok(await until(() => lines().filter((l) => l.name === 'whatsapp.example').length === 4, 3000), 'four lines in the query log');
  t.same(lines().filter((l) => l.name === 'whatsapp.example').map((l) => [l.client, l.clientName, l.verdict]),
    [[CEO, 'laptop-ceo', 'forwarded'], [ANNA, 'phone-anna', 'blocked'], [PRINTER, 'printer-2', 'blocked'], [NOBODY, undefined, 'blocked']]);

  // /api/stats: top blocked clients and the latest attempts carry the name.
  const stats = await (await fetch(`http://127.0.0.1:${adminPort}/api/stats`)).json() as {
    topBlockedClients: { key: string; count: number; name?: string }[]; recentBlocked: { client: string; name?: string }[];
  };
  t.same(new Set(stats.topBlockedClients.map((c) => `${c.key}=${c.name ?? ''}`)), new Set([`${ANNA}=phone-anna`, `${PRINTER}=printer-2`, `${NOBODY}=`]));
  t.same(stats.recentBlocked.map((r) => [r.client, r.name]), [[NOBODY, undefined], [PRINTER, 'printer-2'], [ANNA, 'phone-anna']]);

  // `sinkhole stats` in the terminal.
  // Run as a child while this process (the server) keeps answering: not spawnSync.
  const cli = await promisify(execFile)(process.execPath, [CLI, 'stats', '--admin', `127.0.0.1:${adminPort}`], { encoding: 'utf8', timeout: 20_000 });
  t.match(cli.stdout, new RegExp(`top blocked clients:[\\s\\S]*phone-anna \\(${ANNA.replace(/\./g, '\\.')}\\)`));
  t.match(cli.stdout, new RegExp(`latest blocked attempts:[\\s\\S]*printer-2 \\(${PRINTER.replace(/\./g, '\\.')}\\)  whatsapp\\.example A`));

  // local-domain lan: the DHCP names answer as NAME and NAME.lan, and their addresses' PTR.
  t.equal((await ask(s.port, 'laptop-ceo.lan', T.A)).answers[0]?.text, CEO);
  t.equal((await ask(s.port, 'printer-2', T.A)).answers[0]?.text, PRINTER);
  t.equal((await ask(s.port, PRINTER.split('.').reverse().join('.') + '.in-addr.arpa', T.PTR)).answers[0]?.text, 'printer-2.lan');
  t.equal((await ask(s.port, 'laptop-ceo.lan', T.AAAA)).answers.length, 0, 'no AAAA for an IPv4 lease (NODATA)');

  // The leases change while the server runs: the laptop moves to another address.
  replace(dnsmasq, `1764550100 aa:bb:cc:dd:ee:01 ${NOBODY} laptop-ceo *\n1764550000 aa:bb:cc:dd:ee:02 ${ANNA} anna-tablet *\n`);
  const changedAt = Date.now();
  t.ok(await until(async () => (await ask(s.port, 'laptop-ceo.lan', T.A)).answers[0]?.text === NOBODY, 5000), 'NAME.lan follows the lease');
  t.ok(await until(async () => (await verdict(s, 'whatsapp.example', NOBODY)) === 'allowed', 5000), 'the group follows the name to its new address');
  t.equal(await verdict(s, 'whatsapp.example', CEO), 'blocked', 'the old address left the group');
  t.ok(Date.now() - changedAt < 5000, `in force within 5 s (${Date.now() - changedAt} ms)`);
  await verdict(s, 'whatsapp.example', ANNA);
  const renamed = s.logs.filter((l) => l.msg === 'blocked' || l.msg === 'blocked (repeated)').filter((l) => l.client === ANNA).map((l) => l.clientName);
  t.ok(renamed.includes('anna-tablet'), `the new name in the blocked line (${renamed.join(', ')})`);

  // `sinkhole report` reads the history the server wrote: clients by name.
  await stop();
  let out = '';
  runReport(['--since', '1d', '--by', 'client', '--format', 'json', '--state-dir', stateDir], Date.now() + 1000, (text) => (out += text));
  const rows = (JSON.parse(out) as { rows: { key: string; name: string | null }[] }).rows;
  t.same(new Set(rows.map((r) => `${r.key}=${r.name ?? ''}`)), new Set([`${ANNA}=anna-tablet`, `${PRINTER}=printer-2`, `${NOBODY}=`, `${CEO}=`]),
    'report: the names the clients had when they were last seen');
});
