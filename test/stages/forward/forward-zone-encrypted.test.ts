// forward-zone with encrypted upstreams: a zone's upstreams may be tls:// and https:// as well
// as plain, written and verified as --upstream ones (--upstream-ca, --bootstrap), with the
// same failover. The peers are real: dnsdist (Debian package) serving DoT and DoH on
// loopback with a certificate made here, in front of an in-process plain upstream that
// stands for the domain controller.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { T } from '../../helpers/dns.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import { makeCertificates, needTool, startDnsdist, type Certificates } from '../../helpers/tls-peers.js';
import { buildConfig, ConfigError } from '../../../src/config/config.js';
import { ask } from '../../helpers/client.js';
import { startSinkhole } from '../../helpers/server.js';

async function answering(t: Test, address: string): Promise<TestUpstream> {
  // dns.test is the encrypted upstream's own name (for --bootstrap): it is on loopback.
  const upstream = await startUpstream((q) => ({
    answers: q.type === T.A ? [{ name: q.rawName, type: T.A, ttl: 60, data: q.name === 'dns.test' ? '127.0.0.1' : address }] : [],
  }));
  t.teardown(() => upstream.close());
  return upstream;
}

let certs: Certificates;
t.before(() => {
  certs = makeCertificates();
});
t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }));

t.test('forward-zone over DoT and DoH: the zone\'s names go through the encrypted peer, nothing else does', async (t) => {
  if (!needTool(t, 'dnsdist', 'dnsdist') || !needTool(t, 'openssl', 'openssl')) return;
  const internet = await answering(t, '192.0.2.1');
  const dc = await answering(t, '10.0.0.5');
  const lab = await answering(t, '10.9.9.9');
  const dcPeer = await startDnsdist(t, { upstreamPort: dc.port, cert: certs.cert, key: certs.key });
  const labPeer = await startDnsdist(t, { upstreamPort: lab.port, cert: certs.cert, key: certs.key });
  const s = await startSinkhole({
    upstream: internet.address,
    args: ['--upstream-ca', certs.ca,
      '--forward-zone', `corp.example=tls://127.0.0.1:${dcPeer.tlsPort}#dns.test`,
      '--forward-zone', `lab.corp.example=https://127.0.0.1:${labPeer.httpsPort}/dns-query#dns.test`],
  });
  t.teardown(() => s.close());
  t.equal((await ask(s.port, 'dc1.corp.example', T.A)).answers[0]?.text, '10.0.0.5', 'the zone over DoT');
  t.equal((await ask(s.port, 'x.lab.corp.example', T.A)).answers[0]?.text, '10.9.9.9', 'the more specific zone over DoH');
  t.equal((await ask(s.port, 'dc2.corp.example', T.A, { tcp: true })).answers[0]?.text, '10.0.0.5', 'a TCP client, DoT zone upstream');
  t.equal((await ask(s.port, 'www.example.org', T.A)).answers[0]?.text, '192.0.2.1', 'other names: the default upstream');
  t.same(internet.queries.map((q) => q.name), ['www.example.org'], 'the default upstream never saw the zones\' names');
  t.same(dc.queries.map((q) => q.name).sort(), ['dc1.corp.example', 'dc2.corp.example'], 'the DC got its names through dnsdist');
  t.notOk(dc.queries.some((q) => q.name.includes('lab')), 'not the lab\'s');
  t.same(lab.queries.map((q) => q.name), ['x.lab.corp.example']);
});

t.test('forward-zone failover: a DoT peer with an expired certificate is skipped at once for the next (DoH, then plain)', async (t) => {
  if (!needTool(t, 'dnsdist', 'dnsdist') || !needTool(t, 'openssl', 'openssl')) return;
  const internet = await answering(t, '192.0.2.1');
  const dc = await answering(t, '10.0.0.5');
  const expired = await startDnsdist(t, { upstreamPort: dc.port, cert: certs.expiredCert, key: certs.key });
  const good = await startDnsdist(t, { upstreamPort: dc.port, cert: certs.cert, key: certs.key });
  const s = await startSinkhole({
    upstream: internet.address,
    args: ['--upstream-ca', certs.ca, '--forward-zone',
      `corp.example=tls://127.0.0.1:${expired.tlsPort}#dns.test,https://127.0.0.1:${good.httpsPort}/dns-query#dns.test,${dc.address}`],
  });
  t.teardown(() => s.close());
  const started = Date.now();
  t.equal((await ask(s.port, 'dc1.corp.example', T.A)).answers[0]?.text, '10.0.0.5', 'answered by the next upstream of the zone');
  t.ok(Date.now() - started < 1000, `without waiting for a timeout (${Date.now() - started} ms)`);
  t.ok(s.logs.some((l) => l.msg === 'encrypted upstream connection failed' && String(l.reason) === `tls://127.0.0.1:${expired.tlsPort}#dns.test: certificate has expired`),
    'the handshake failure names the zone\'s upstream and the reason');
  t.same(internet.queries, [], 'the default upstream is no fallback for the zone');

  // Only the expired peer: SERVFAIL whose EDE names it.
  const bad = await startSinkhole({
    upstream: internet.address, args: ['--upstream-ca', certs.ca, '--forward-zone', `corp.example=tls://127.0.0.1:${expired.tlsPort}#dns.test`],
  });
  t.teardown(() => bad.close());
  const reply = await ask(bad.port, 'dc1.corp.example', T.A, { edns: true });
  t.equal(reply.rcode, 2, 'SERVFAIL');
  t.equal(reply.opt?.options.find((o) => o.code === 15)?.data.subarray(2).toString(),
    `tls://127.0.0.1:${expired.tlsPort}#dns.test: certificate has expired`, 'the EDE names the upstream and the reason');
});

t.test('forward-zone https:// by name: looked up through --bootstrap; config-file form with #NAME', async (t) => {
  if (!needTool(t, 'dnsdist', 'dnsdist') || !needTool(t, 'openssl', 'openssl')) return;
  const internet = await answering(t, '192.0.2.1');
  const dc = await answering(t, '10.0.0.5');
  const peer = await startDnsdist(t, { upstreamPort: dc.port, cert: certs.cert, key: certs.key });
  const dir = mkdtempSync(join(tmpdir(), 'fz-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The # in #dns.test names the certificate; it is no comment.
  writeFileSync(join(dir, 'sinkhole.conf'), `forward-zone corp.example https://dns.test:${peer.httpsPort}/dns-query tls://127.0.0.1:${peer.tlsPort}#dns.test # the DCs\n`);
  const s = await startSinkhole({ upstream: internet.address, args: ['--upstream-ca', certs.ca, '--bootstrap', internet.address, '--config', join(dir, 'sinkhole.conf')] });
  t.teardown(() => s.close());
  t.same(s.config.forwardZones.map((z) => z.upstreams.map((u) => u.label)),
    [[`https://dns.test:${peer.httpsPort}/dns-query`, `tls://127.0.0.1:${peer.tlsPort}#dns.test`]], 'both upstreams, in order');
  t.equal((await ask(s.port, 'dc1.corp.example', T.A)).answers[0]?.text, '10.0.0.5', 'answered through DoH');
  t.same(internet.queries.map((q) => q.name), ['dns.test'], 'the bootstrap server was asked for the DoH host only');
  t.same(dc.queries.map((q) => q.name), ['dc1.corp.example']);
});

t.test('bad encrypted forward-zone upstreams stop startup with one line (exit 2)', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--forward-zone', 'corp.example=tls://10.0.0.5'], /^--forward-zone: forward-zone corp\.example: upstream "tls:\/\/10\.0\.0\.5": no name to verify the certificate against/],
    [['--forward-zone', 'corp.example=quic://10.0.0.5'], /forward-zone corp\.example: upstream "quic:\/\/10\.0\.0\.5": unknown scheme/],
    [['--forward-zone', 'corp.example=https://dc.corp.example/dns-query'], /^upstream https:\/\/dc\.corp\.example:443\/dns-query is given by name: add --bootstrap IP/],
    [['--forward-zone', 'corp.example=tls://10.0.0.5#dc.corp.example', '--upstream-ca', '/nonexistent.pem'], /cannot read \/nonexistent\.pem \(ENOENT\)/],
  ];
  for (const [args, message] of cases) {
    let error: unknown = null;
    try {
      buildConfig(['--upstream', '192.0.2.1', ...args]);
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof ConfigError, `${args.join(' ')}: a ConfigError (exit 2)`);
    t.match((error as Error | null)?.message ?? '', message, args.join(' '));
    t.notMatch((error as Error | null)?.message ?? '', /\n/, 'one line');
  }
  const ok = buildConfig(['--upstream', '192.0.2.1', '--forward-zone', 'corp.example=tls://10.0.0.5#dc.corp.example,https://[2001:db8::5]:8443/q#dc.corp.example,10.0.0.6']);
  t.same(ok.forwardZones[0]?.upstreams.map((u) => [u.kind, u.label]),
    [['tls', 'tls://10.0.0.5:853#dc.corp.example'], ['https', 'https://[2001:db8::5]:8443/q#dc.corp.example'], ['udp', '10.0.0.6:53']], 'mixed kinds, in order');
});
