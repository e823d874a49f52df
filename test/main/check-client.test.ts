// `sinkhole check NAME --client CLIENTNAME` as an admin runs it: the real CLI (dist/) reads
// the config file's client-names files (a dnsmasq leases file, a hosts file) and checks as
// that client's address, with its group; /api/check?client=NAME does the same on the
// running server.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, startSinkhole } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { T } from '../helpers/dns.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');

const root = mkdtempSync(join(tmpdir(), 'sinkhole-check-client-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'blocklists');
mkdirSync(join(dir, 'available'), { recursive: true });
writeFileSync(join(dir, 'whatsapp.txt'), '# WhatsApp\nwhatsapp.example\n');
writeFileSync(join(dir, 'available', 'teams.txt'), '# Teams\nteams.example\n');
const leases = join(root, 'dnsmasq.leases');
writeFileSync(leases, [
  '1900000000 aa:bb:cc:00:00:05 127.0.1.5 alice-pc 01:aa:bb:cc:00:00:05',
  '1900000000 aa:bb:cc:00:00:09 127.0.2.9 * 01:aa:bb:cc:00:00:09',
  '1900000000 aa:bb:cc:00:00:20 127.0.3.20 laptop-ceo 01:aa:bb:cc:00:00:20',
  '',
].join('\n'));
const hosts = join(root, 'hosts');
writeFileSync(hosts, '127.0.2.44 printer-2f\n');
const conf = join(root, 'sinkhole.conf');
writeFileSync(conf, [
  `blocklists ${dir}`,
  `state-dir ${join(root, 'state')}`,
  `client-names ${leases}`,
  `client-names ${hosts}`,
  'group    staff   127.0.1.0/24',
  'group    guests  127.0.2.0/24',
  'group    boss    laptop-ceo',
  'block    staff   whatsapp teams',
  'block    guests  whatsapp',
  'block    boss    none',
  '',
].join('\n'));

const check = (...args: string[]) => spawnSync(process.execPath, [CLI, 'check', ...args, '--config', conf], { encoding: 'utf8' });

t.test('check --client NAME: the name from the leases file, its group, the verdict', async (t) => {
  const alice = check('teams.example', '--client', 'alice-pc');
  t.equal(alice.status, 1, alice.stderr);
  t.match(alice.stdout, /^teams\.example A from alice-pc \(127\.0\.1\.5\): BLOCKED -> /);
  t.match(alice.stdout, new RegExp(`\\n  group: staff \\(127\\.0\\.1\\.0/24, ${conf.replace(/[.]/g, '\\.')}:5\\)`));
  t.equal(alice.stderr, '');
  // The same as giving the address.
  const byAddress = check('teams.example', '--client', '127.0.1.5');
  t.equal(byAddress.status, 1);
  t.equal(byAddress.stdout.replace('from 127.0.1.5', 'from alice-pc (127.0.1.5)'), alice.stdout, 'the name gives what its address gives');

  const json = JSON.parse(check('teams.example', '--client', 'ALICE-PC', '--json').stdout) as Record<string, unknown>;
  t.match(json, { client: '127.0.1.5', clientName: 'alice-pc', verdict: 'blocked', group: { group: 'staff' } }, 'names are case-insensitive');

  // A group given by name: the CEO's laptop is in "boss" by its lease, not by an address line.
  const ceo = check('whatsapp.example', '--client', 'laptop-ceo');
  t.equal(ceo.status, 0, ceo.stderr);
  t.match(ceo.stdout, /^whatsapp\.example A from laptop-ceo \(127\.0\.3\.20\): ALLOWED/);
  t.match(ceo.stdout, new RegExp(`\\n  group: boss \\(laptop-ceo, ${conf.replace(/[.]/g, '\\.')}:7\\)`));
  t.match(check('whatsapp.example', '--client', '127.0.3.20').stdout, /\n  group: boss /, 'and by its address, through the leases');

  // A name from the hosts file (the second client-names file).
  const printer = check('whatsapp.example', '--client', 'printer-2f');
  t.equal(printer.status, 1);
  t.match(printer.stdout, /from printer-2f \(127\.0\.2\.44\): BLOCKED[^]*group: guests/);
});

t.test('check --client NAME: one-line errors', async (t) => {
  const unknown = check('teams.example', '--client', 'bob-pc');
  t.equal(unknown.status, 2);
  t.equal(unknown.stderr, `sinkhole: --client bob-pc: no client of that name in ${leases}, ${hosts}; give an address, or check the name\n`);
  t.equal(unknown.stdout, '');
  const bad = check('teams.example', '--client', 'no body!');
  t.equal(bad.status, 2);
  t.equal(bad.stderr, 'sinkhole: --client: "no body!" is neither an IP address nor a client name\n');
  const noNames = spawnSync(process.execPath, [CLI, 'check', 'teams.example', '--client', 'alice-pc', '--blocklists', dir], { encoding: 'utf8' });
  t.equal(noNames.status, 2);
  t.match(noNames.stderr, /^sinkhole: --client alice-pc: a client name needs client-names files; add "client-names \/var\/lib\/misc\/dnsmasq\.leases" \(or a hosts file\) to the config, or give an address\n$/);
});

t.test('/api/check?client=NAME on the running server', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const adminPort = await freePort();
  const s = await startSinkhole({ upstream: upstream.address, dir, args: ['--config', conf, '--admin', `127.0.0.1:${adminPort}`] });
  t.teardown(() => s.close());
  const get = async (query: string) => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/api/check?${query}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  t.match(await get('name=teams.example&client=alice-pc'), { status: 200, body: { client: '127.0.1.5', clientName: 'alice-pc', verdict: 'blocked', group: { group: 'staff' } } });
  t.match(await get('name=whatsapp.example&client=laptop-ceo'), { status: 200, body: { verdict: 'allowed', group: { group: 'boss' } } });
  t.match(await get('name=teams.example&client=bob-pc'), { status: 400, body: { error: 'client "bob-pc" is not an IP address nor a name in the client-names files' } });
});
