// Client names files: the three formats told apart by content, bad lines skipped with
// file:line, IPv4 clients found under both of Node's spellings, a replaced file re-read.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ClientNames, detectFormat, parseClientNames } from '../../src/observe/client-names.js';
import { captureLogs } from '../helpers/server.js';

const DNSMASQ = `1764550000 aa:bb:cc:dd:ee:01 192.168.1.23 laptop-ceo 01:aa:bb:cc:dd:ee:01
1764550000 aa:bb:cc:dd:ee:02 192.168.1.24 * *
1764550000 aa:bb:cc:dd:ee:03 192.168.1.300 broken *
1764550000 aa:bb:cc:dd:ee:04 192.168.1.25 Phone-Anna *
duid 00:01:00:01:2a:2b:2c:2d:aa:bb:cc:dd:ee:01
1764550000 1234 fd00::25 phone-anna 00:01:00:01
`;

const DHCPD = `# The format of this file is documented in the dhcpd.leases(5) manual page.
authoring-byte-order little-endian;

lease 10.0.0.7 {
  starts 2 2026/12/01 00:00:00;
  binding state active;
  hardware ethernet 00:11:22:33:44:55;
  client-hostname "printer-2";
}
lease 10.0.0.8 {
  binding state active;
  client-hostname "bad name!";
}
lease 10.0.0.9 {
  binding state active;
  client-hostname "gone";
}
lease 10.0.0.9 {
  binding state free;
}
lease 10.0.0.7 {
  binding state active;
  client-hostname "printer-3";
}
`;

t.test('formats are told from the content', async (t) => {
  t.equal(detectFormat(DNSMASQ), 'dnsmasq');
  t.equal(detectFormat(DHCPD), 'dhcpd');
  t.equal(detectFormat('# hosts\n127.0.0.1 localhost\n192.168.1.5 nas nas.lan\n'), 'hosts');
});

t.test('dnsmasq leases: names, * skipped silently, bad lines named by file:line, IPv6 leases', async (t) => {
  const { entries, problems } = parseClientNames('/leases', DNSMASQ);
  t.same(entries, [
    { address: '192.168.1.23', name: 'laptop-ceo' },
    { address: '192.168.1.25', name: 'phone-anna' },
    { address: 'fd00::25', name: 'phone-anna' },
  ]);
  t.same(problems, [{ where: '/leases:3', reason: '"192.168.1.300" is not an IP address' }]);
});

t.test('dhcpd leases: the last block of an address wins; a freed lease has no name', async (t) => {
  const { entries, problems } = parseClientNames('/dhcpd.leases', DHCPD);
  t.same(entries, [{ address: '10.0.0.7', name: 'printer-3' }]);
  t.same(problems, [{ where: '/dhcpd.leases:12', reason: '"bad name!" is not a host name' }]);
});

t.test('hosts file: the first name of a line', async (t) => {
  const { entries, problems } = parseClientNames('/hosts', '192.168.1.5 nas nas.lan\nnot-an-ip foo\n192.168.1.6\n');
  t.same(entries, [{ address: '192.168.1.5', name: 'nas' }]);
  t.same(problems.map((p) => p.where), ['/hosts:2', '/hosts:3']);
});

t.test('a file replaced on disk is re-read; lookups by both spellings; version moves', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-names-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dnsmasq.leases');
  writeFileSync(file, DNSMASQ);
  const { output, logs } = captureLogs();
  const names = new ClientNames([file, join(dir, 'missing')], output.log, 50);
  await names.start();
  t.teardown(() => names.close());
  t.equal(names.nameOf('192.168.1.23'), 'laptop-ceo');
  t.equal(names.nameOf('::ffff:192.168.1.23'), 'laptop-ceo');
  t.equal(names.nameOf('192.168.1.99'), undefined);
  t.same(names.addressesOf('PHONE-ANNA'), ['192.168.1.25', '::ffff:192.168.1.25', 'fd00::25']);
  t.ok(logs.some((l) => /client-names line skipped: .*dnsmasq\.leases:3/.test(String(l.msg))), 'the bad line is logged with file:line');
  t.ok(logs.some((l) => /cannot read client-names file .*missing \(ENOENT\)/.test(String(l.msg))));
  const before = names.version;
  // As dnsmasq and editors do it: a new file renamed over the old one.
  writeFileSync(`${file}.new`, '1764550000 aa:bb:cc:dd:ee:01 192.168.1.23 boardroom *\n');
  renameSync(`${file}.new`, file);
  const until = Date.now() + 5000;
  while (names.nameOf('192.168.1.23') !== 'boardroom' && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(names.nameOf('192.168.1.23'), 'boardroom');
  t.equal(names.nameOf('192.168.1.25'), undefined, 'a lease gone from the file loses its name');
  t.ok(names.version > before);
});
