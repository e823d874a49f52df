// Fitting into an office network, over real sockets: an Active Directory domain forwarded to
// its own servers, private reverse lookups kept off the internet, hosts-file names, and the
// option errors an admin may make.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildConfig } from '../../../src/config/config.js';
import { ask } from '../../helpers/client.js';
import { T } from '../../helpers/dns.js';
import { startSinkhole } from '../../helpers/server.js';
import { startUpstream } from '../../helpers/upstream.js';

const answering = (address: string) => startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: address }] }));

t.test('forward-zone: the zone\'s names go to its own upstreams, the most specific zone wins, blocking first', async (t) => {
  const internet = await answering('192.0.2.1');
  const dc = await answering('10.0.0.5');
  const lab = await answering('10.9.9.9');
  const s = await startSinkhole({
    upstream: internet.address, lists: { 'm.txt': 'evil.corp.example\n' },
    args: ['--forward-zone', `corp.example=${dc.address}`, '--forward-zone', `lab.corp.example=${lab.address}`],
  });
  t.teardown(async () => {
    await s.close();
    await Promise.all([internet.close(), dc.close(), lab.close()]);
  });
  t.equal((await ask(s.port, 'dc1.corp.example', T.A)).answers[0]?.text, '10.0.0.5', 'the AD domain: its domain controller');
  t.equal((await ask(s.port, 'x.lab.corp.example', T.A)).answers[0]?.text, '10.9.9.9', 'a more specific zone wins');
  t.equal((await ask(s.port, 'www.example.org', T.A)).answers[0]?.text, '192.0.2.1', 'everything else: the default upstream');
  t.equal((await ask(s.port, 'evil.corp.example', T.A)).answers[0]?.text, '127.0.0.1', 'blocking applies first');
  t.same(internet.queries.map((q) => q.name), ['www.example.org'], 'the internet upstream never saw the zone\'s names');
  t.same(dc.queries.map((q) => q.name), ['dc1.corp.example']);
});

t.test('private reverse lookups are answered here, unless a forward-zone covers them', async (t) => {
  const internet = await answering('192.0.2.1');
  const router = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.PTR, ttl: 60, data: 'router.lan' }] }));
  const s = await startSinkhole({ upstream: internet.address, args: ['--forward-zone', `168.192.in-addr.arpa=${router.address}`] });
  t.teardown(async () => {
    await s.close();
    await Promise.all([internet.close(), router.close()]);
  });
  const local = await ask(s.port, '7.0.0.10.in-addr.arpa', T.PTR);
  t.equal(local.rcode, 3, '10/8: NXDOMAIN');
  t.equal(local.authority[0]?.name, '10.in-addr.arpa', 'with the zone\'s SOA');
  t.equal((await ask(s.port, 'printer.home.arpa', T.A)).rcode, 3, 'home.arpa');
  t.equal((await ask(s.port, '1.1.168.192.in-addr.arpa', T.PTR)).answers[0]?.text, 'router.lan', 'the router\'s reverse zone goes to the router');
  t.same(internet.queries, [], 'nothing private reached the internet upstream');
});

t.test('hosts-file and local-domain over a real socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hosts-'));
  writeFileSync(join(dir, 'hosts'), '192.168.1.50 nas\n');
  const internet = await answering('192.0.2.1');
  const s = await startSinkhole({ upstream: internet.address, args: ['--hosts-file', join(dir, 'hosts'), '--local-domain', 'lan'] });
  t.teardown(async () => {
    await s.close();
    await internet.close();
  });
  t.equal((await ask(s.port, 'nas.lan', T.A)).answers[0]?.text, '192.168.1.50');
  t.equal((await ask(s.port, '50.1.168.192.in-addr.arpa', T.PTR)).answers[0]?.text, 'nas.lan', 'its PTR, before the private zone');
  t.same(internet.queries, []);
});

t.test('bad input: one line naming the option and the fix', async (t) => {
  const bad = (args: string[]) => {
    try {
      buildConfig(['--upstream', '192.0.2.1', ...args]);
      return 'accepted';
    } catch (err) {
      return (err as Error).message;
    }
  };
  t.match(bad(['--forward-zone', 'corp..example=10.0.0.1']), /--forward-zone: "corp\.\.example" is not a domain/);
  t.match(bad(['--forward-zone', 'corp.example']), /names no upstream \(e\.g\. forward-zone corp\.example 192\.168\.1\.5\)/);
  t.match(bad(['--forward-zone', 'corp.example=dc1']), /forward-zone corp\.example: .*not an IP address/);
  t.match(bad(['--private-reverse', 'maybe']), /private-reverse "maybe" must be one of local, forward/);
  t.match(bad(['--local-domain', 'a b']), /"a b" is not a domain name/);
  const dir = mkdtempSync(join(tmpdir(), 'conf-'));
  writeFileSync(join(dir, 'sinkhole.conf'), 'forward-zone corp.example 10.0.0.5 10.0.0.6\n');
  t.match(buildConfig(['--upstream', '192.0.2.1', '--config', join(dir, 'sinkhole.conf')]).forwardZones,
    [{ zone: 'corp.example', upstreams: [{ kind: 'udp', endpoint: { host: '10.0.0.5' } }, { kind: 'udp', endpoint: { host: '10.0.0.6' } }] }], 'the config-file form: DOMAIN UPSTREAM UPSTREAM');
});
