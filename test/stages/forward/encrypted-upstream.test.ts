// Encrypted upstreams against a real server: dnsdist (Debian package) serving DNS over TLS
// and DNS over HTTPS on loopback, with a certificate made here by openssl, in front of the
// in-process plain upstream. Also the --upstream URL forms and the --bootstrap lookup.
import { readFileSync, rmSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:tls';
import t, { type Test } from 'tap';
import { buildQuery, decode, T } from '../../helpers/dns.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import { makeCertificates, needTool, startDnsdist, type Certificates } from '../../helpers/tls-peers.js';
import { parseUpstream, type EncryptedUpstream } from '../../../src/stages/forward/upstream-url.js';
import { TlsUpstream } from '../../../src/stages/forward/transports/tls.js';
import { HttpsUpstream } from '../../../src/stages/forward/transports/https.js';
import type { EncryptedTransport } from '../../../src/stages/forward/transports/encrypted.js';
import { bootstrapResolver } from '../../../src/stages/forward/bootstrap.js';
import { UdpUpstreamClient } from '../../../src/stages/forward/transports/udp.js';
import { mustKey } from '../../../src/wire/names.js';
import { buildConfig, ConfigError } from '../../../src/config/config.js';
import { ask } from '../../helpers/client.js';
import { startSinkhole } from '../../helpers/server.js';
import { parseEndpoint, type Endpoint } from '../../../src/net/endpoint.js';

/** n123.example -> 10.0.0.123: each answer says which question it answers. */
const addressFor = (name: string): string => {
  const n = Number(/^n(\d+)\./.exec(name)?.[1] ?? 0);
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
};

async function plainUpstream(t: Test): Promise<TestUpstream> {
  const upstream = await startUpstream((q) => (q.name === 'dns.test'
    ? { answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '127.0.0.1' }] }
    : { answers: q.type === T.A ? [{ name: q.rawName, type: T.A, ttl: 60, data: addressFor(q.name) }] : [] }));
  t.teardown(() => upstream.close());
  return upstream;
}

function url(text: string): EncryptedUpstream {
  const u = parseUpstream(text);
  if ('error' in u || u.kind === 'udp') throw new Error(`not an encrypted upstream: ${text}`);
  return u;
}

function exchange(transport: EncryptedTransport, name: string, timeoutMs = 3000): Promise<{ answer: Buffer | null; failure: string }> {
  const msg = buildQuery(name, T.A, { edns: true });
  return new Promise((resolve) => transport.exchange(msg, { qnameKey: mustKey(name), qtype: T.A, qclass: 1 }, Date.now() + timeoutMs,
    (answer, failure) => resolve({ answer, failure })));
}

let certs: Certificates;
t.before(() => {
  certs = makeCertificates();
});
t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }));

t.test('upstream URLs: tls:// and https:// forms, and one clear line for each mistake', async (t) => {
  t.match(parseUpstream('tls://192.0.2.1#dns.example'), { kind: 'tls', host: '192.0.2.1', port: 853, serverName: 'dns.example', label: 'tls://192.0.2.1:853#dns.example' });
  t.match(parseUpstream('tls://[2001:db8::1]:8853#dns.example'), { kind: 'tls', host: '2001:db8::1', port: 8853, label: 'tls://[2001:db8::1]:8853#dns.example' });
  t.match(parseUpstream('tls://dns.example'), { kind: 'tls', host: 'dns.example', serverName: 'dns.example' });
  t.match(parseUpstream('https://dns.example/dns-query'), { kind: 'https', host: 'dns.example', port: 443, path: '/dns-query', serverName: 'dns.example' });
  t.match(parseUpstream('https://192.0.2.1:8443/q#doh.example'), { kind: 'https', host: '192.0.2.1', port: 8443, path: '/q', serverName: 'doh.example' });
  t.match(parseUpstream('192.0.2.1'), { kind: 'udp', endpoint: { host: '192.0.2.1', port: 53 } });
  t.match(parseUpstream('udp://192.0.2.1:5353'), { kind: 'udp', endpoint: { port: 5353 } });
  const errors: Array<[string, RegExp]> = [
    ['quic://192.0.2.1', /unknown scheme "quic:\/\/"; write IP\[:PORT\], tls:\/\/IP\[:853\]#NAME or https:/],
    ['tls://192.0.2.1', /no name to verify the certificate against; add it after #, e.g. tls:\/\/192\.0\.2\.1#dns\.example/],
    ['https://192.0.2.1/dns-query', /no name to verify/],
    ['https://dns.example', /needs the DoH path, e\.g\. https:\/\/dns\.example\/dns-query/],
    ['tls://192.0.2.1:99999#a.example', /port "99999" must be a number from 1 to 65535/],
    ['tls://192.0.2.1#not a name', /is not a host name to verify/],
    ['tls://192.0.2.1/path#a.example', /a tls:\/\/ upstream has no path/],
    ['https://2001:db8::1/dns-query#a.example', /in brackets/],
  ];
  for (const [text, message] of errors) {
    const r = parseUpstream(text);
    t.ok('error' in r, `${text} is refused`);
    if ('error' in r) {
      t.match(r.error, message, text);
      t.notMatch(r.error, /\n/, 'one line');
    }
  }
});

t.test('DNS over TLS through dnsdist: answers, many queries in flight on one connection', async (t) => {
  if (!needTool(t, 'dnsdist', 'dnsdist') || !needTool(t, 'openssl', 'openssl')) return;
  const upstream = await plainUpstream(t);
  const dnsdist = await startDnsdist(t, { upstreamPort: upstream.port, cert: certs.cert, key: certs.key });
  const tls = new TlsUpstream(url(`tls://127.0.0.1:${dnsdist.tlsPort}#dns.test`), { ca: [readFileSync(certs.ca)] });
  t.teardown(() => tls.close());

  const first = await exchange(tls, 'n7.example');
  t.equal(first.failure, '');
  t.equal(decode(first.answer!).answers[0]?.text, '10.0.0.7', 'answered through dnsdist from the plain upstream');
  t.ok(upstream.queries.some((q) => q.name === 'n7.example'), 'the plain upstream saw the query');

  const count = 2000;
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => exchange(tls, `n${i}.example`, 10_000)));
  const right = answers.filter((a, i) => a.answer !== null && decode(a.answer).answers[0]?.text === addressFor(`n${i}.example`)).length;
  t.equal(right, count, `all ${count} pipelined queries answered, each with its own answer`);
  t.equal(tls.handshakes, 1, 'one TLS connection for all of them');
  t.equal(tls.inFlight, 0, 'nothing left waiting');
});

t.test('DNS over HTTPS through dnsdist: answers, many streams on one HTTP/2 session', async (t) => {
  if (!needTool(t, 'dnsdist', 'dnsdist') || !needTool(t, 'openssl', 'openssl')) return;
  const upstream = await plainUpstream(t);
  const dnsdist = await startDnsdist(t, { upstreamPort: upstream.port, cert: certs.cert, key: certs.key });
  const https = new HttpsUpstream(url(`https://127.0.0.1:${dnsdist.httpsPort}/dns-query#dns.test`), { ca: [readFileSync(certs.ca)] });
  t.teardown(() => https.close());

  const first = await exchange(https, 'n9.example');
  t.equal(first.failure, '');
  t.equal(decode(first.answer!).answers[0]?.text, '10.0.0.9');

  const count = 1000;
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => exchange(https, `n${i}.example`, 10_000)));
  const right = answers.filter((a, i) => a.answer !== null && decode(a.answer).answers[0]?.text === addressFor(`n${i}.example`)).length;
  t.equal(right, count, `all ${count} queries answered on their own streams`);
  t.equal(https.handshakes, 1, 'one HTTP/2 session for all of them');
});

t.test('a bad certificate: the failure names the upstream and the reason, and the next query fails at once', async (t) => {
  if (!needTool(t, 'dnsdist', 'dnsdist') || !needTool(t, 'openssl', 'openssl')) return;
  const upstream = await plainUpstream(t);
  const expired = await startDnsdist(t, { upstreamPort: upstream.port, cert: certs.expiredCert, key: certs.key });
  const good = await startDnsdist(t, { upstreamPort: upstream.port, cert: certs.cert, key: certs.key });
  const ca = [readFileSync(certs.ca)];
  type Make = (onFailure: (f: string) => void) => EncryptedTransport;
  const cases: Array<[Make, RegExp]> = [
    [(onFailure) => new TlsUpstream(url(`tls://127.0.0.1:${expired.tlsPort}#dns.test`), { ca, onFailure }),
      new RegExp(`^tls://127\\.0\\.0\\.1:${expired.tlsPort}#dns\\.test: certificate has expired$`)],
    [(onFailure) => new HttpsUpstream(url(`https://127.0.0.1:${expired.httpsPort}/dns-query#dns.test`), { ca, onFailure }),
      new RegExp(`^https://127\\.0\\.0\\.1:${expired.httpsPort}/dns-query#dns\\.test: certificate has expired$`)],
    [(onFailure) => new TlsUpstream(url(`tls://127.0.0.1:${good.tlsPort}#other.test`), { ca, onFailure }),
      /#other\.test: Hostname\/IP does not match certificate's altnames: Host: other\.test\. is not in the cert's altnames: DNS:dns\.test/],
    // Without --upstream-ca only the system's CAs are trusted, and they do not know the test CA.
    [(onFailure) => new TlsUpstream(url(`tls://127.0.0.1:${good.tlsPort}#dns.test`), { onFailure }), /#dns\.test: (unable to verify the first certificate|unable to get local issuer certificate)$/],
  ];
  for (const [make, message] of cases) {
    const failures: string[] = [];
    const transport = make((f) => failures.push(f));
    const r = await exchange(transport, 'n1.example');
    t.equal(r.answer, null, `${transport.label}: no answer`);
    t.match(r.failure, message, r.failure);
    t.same(failures, [r.failure], 'the same line is reported once for the log');
    const started = Date.now();
    const again = await exchange(transport, 'n2.example');
    t.equal(again.failure, r.failure, 'during the backoff the next query fails at once with the same reason');
    t.ok(Date.now() - started < 100, 'without waiting');
    transport.close();
  }
  t.notOk(upstream.queries.some((q) => q.name.endsWith('.example')), 'nothing reached the plain upstream');
});

t.test('--bootstrap: a DoH upstream given by name is looked up over plain DNS, once', async (t) => {
  if (!needTool(t, 'dnsdist', 'dnsdist') || !needTool(t, 'openssl', 'openssl')) return;
  const upstream = await plainUpstream(t);
  const dnsdist = await startDnsdist(t, { upstreamPort: upstream.port, cert: certs.cert, key: certs.key });
  const udp = new UdpUpstreamClient(() => undefined);
  t.teardown(() => udp.close());
  const bootstrap = parseEndpoint(upstream.address, 53) as Endpoint;
  const https = new HttpsUpstream(url(`https://dns.test:${dnsdist.httpsPort}/dns-query`), { ca: [readFileSync(certs.ca)], resolveHost: bootstrapResolver([bootstrap], udp) });
  t.teardown(() => https.close());
  const r = await exchange(https, 'n3.example');
  t.equal(decode(r.answer!).answers[0]?.text, '10.0.0.3', 'answered after the lookup');
  await exchange(https, 'n4.example');
  const lookups = upstream.queries.filter((q) => q.name === 'dns.test');
  t.equal(lookups.length, 1, 'dns.test looked up once');
  t.equal(lookups[0]?.type, T.A);
  t.notOk(lookups[0]?.tcp, 'over plain UDP');

  const none = new HttpsUpstream(url(`https://nowhere.test:${dnsdist.httpsPort}/dns-query`), { resolveHost: bootstrapResolver([], udp) });
  const failed = await exchange(none, 'n5.example');
  t.match(failed.failure, /^https:\/\/nowhere\.test:\d+\/dns-query: nowhere\.test is a name: give --bootstrap IP/);
  none.close();
});

t.test('the server forwards over DoT and DoH upstreams (mixed with failing ones); a handshake failure reaches the log and the EDE', async (t) => {
  if (!needTool(t, 'dnsdist', 'dnsdist') || !needTool(t, 'openssl', 'openssl')) return;
  const upstream = await plainUpstream(t);
  const good = await startDnsdist(t, { upstreamPort: upstream.port, cert: certs.cert, key: certs.key });
  const expired = await startDnsdist(t, { upstreamPort: upstream.port, cert: certs.expiredCert, key: certs.key });
  const ca = ['--upstream-ca', certs.ca];

  const dot = await startSinkhole({ upstream: `tls://127.0.0.1:${good.tlsPort}#dns.test`, args: ca });
  t.teardown(() => dot.close());
  t.equal((await ask(dot.port, 'n11.example', T.A)).answers[0]?.text, '10.0.0.11', 'UDP client, DoT upstream');
  t.equal((await ask(dot.port, 'n12.example', T.A, { tcp: true })).answers[0]?.text, '10.0.0.12', 'TCP client, DoT upstream');

  const doh = await startSinkhole({ upstream: `https://127.0.0.1:${good.httpsPort}/dns-query#dns.test`, args: ca });
  t.teardown(() => doh.close());
  t.equal((await ask(doh.port, 'n13.example', T.A)).answers[0]?.text, '10.0.0.13', 'DoH upstream');

  // The expired one first: its failure moves the query on to the next upstream at once.
  const mixed = await startSinkhole({ upstream: [`tls://127.0.0.1:${expired.tlsPort}#dns.test`, `https://127.0.0.1:${good.httpsPort}/dns-query#dns.test`, upstream.address], args: ca });
  t.teardown(() => mixed.close());
  const started = Date.now();
  t.equal((await ask(mixed.port, 'n14.example', T.A)).answers[0]?.text, '10.0.0.14', 'answered by the next upstream');
  t.ok(Date.now() - started < 1000, 'without waiting for a timeout');
  t.ok(mixed.logs.some((l) => l.msg === 'encrypted upstream connection failed' && String(l.reason).endsWith('#dns.test: certificate has expired')), 'the handshake failure is logged');

  const bad = await startSinkhole({ upstream: `tls://127.0.0.1:${expired.tlsPort}#dns.test`, args: ca });
  t.teardown(() => bad.close());
  const reply = await ask(bad.port, 'n15.example', T.A, { edns: true });
  t.equal(reply.rcode, 2, 'SERVFAIL');
  const ede = reply.opt?.options.find((o) => o.code === 15);
  t.ok(ede, 'with an extended DNS error');
  t.equal(ede?.data.subarray(2).toString(), `tls://127.0.0.1:${expired.tlsPort}#dns.test: certificate has expired`, 'whose text names the upstream and the reason');
});

t.test('bad encrypted-DNS settings stop startup with one line (exit 2: ConfigError)', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--upstream', 'quic://192.0.2.1'], /^--upstream: upstream "quic:\/\/192\.0\.2\.1": unknown scheme/],
    [['--upstream', 'tls://192.0.2.1'], /no name to verify the certificate against/],
    [['--upstream', 'https://dns.example/dns-query'], /^upstream https:\/\/dns\.example:443\/dns-query is given by name: add --bootstrap IP/],
    [['--upstream', '192.0.2.1', '--listen-tls', '127.0.0.1:8853'], /needs --tls-cert FILE and --tls-key FILE/],
    [['--upstream', '192.0.2.1', '--listen-https', '127.0.0.1:8443', '--tls-cert', certs.cert, '--tls-key', certs.otherKey], /the key does not belong to the certificate/],
    [['--upstream', '192.0.2.1', '--listen-tls', '127.0.0.1:8853', '--tls-cert', '/nonexistent.pem', '--tls-key', certs.key], /^cannot read --tls-cert \/nonexistent\.pem: no such file/],
    [['--upstream', 'tls://192.0.2.1#a.example', '--upstream-ca', '/nonexistent.pem'], /cannot read \/nonexistent\.pem \(ENOENT\)/],
  ];
  for (const [args, message] of cases) {
    t.throws(() => buildConfig(args), message, args.join(' '));
    try {
      buildConfig(args);
    } catch (err) {
      t.ok(err instanceof ConfigError, 'a ConfigError (exit 2)');
      t.notMatch((err as Error).message, /\n/, 'one line');
    }
  }
  const ok = buildConfig(['--upstream', 'https://dns.example/dns-query', '--bootstrap', '192.0.2.53', '--upstream', '192.0.2.1']);
  t.same(ok.upstreams.map((u) => u.label), ['https://dns.example:443/dns-query', '192.0.2.1:53'], 'mixed kinds, in order');
  t.same(ok.bootstrap.map((b) => b.label), ['192.0.2.53:53']);
});

t.test('DoT reconnects: a connection the server closes with queries in flight is reopened and they are sent again once', async (t) => {
  // An in-process DoT server that closes its first connection without answering, then answers.
  let connections = 0;
  const server = createTlsServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) }, (socket) => {
    const number = ++connections;
    let buffered = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      if (number === 1) {
        socket.destroy();
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const query = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + query.length);
        const answer = Buffer.from(query);
        answer.writeUInt16BE(0x8183, 2); // a response, NXDOMAIN
        const frame = Buffer.alloc(2 + answer.length);
        frame.writeUInt16BE(answer.length, 0);
        answer.copy(frame, 2);
        socket.write(frame);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const tls = new TlsUpstream(url(`tls://127.0.0.1:${port}#dns.test`), { ca: [readFileSync(certs.ca)], idleMs: 200 });
  t.teardown(() => tls.close());
  const answers = await Promise.all([exchange(tls, 'r1.example'), exchange(tls, 'r2.example'), exchange(tls, 'r3.example')]);
  t.same(answers.map((a) => a.answer === null ? a.failure : decode(a.answer).rcode), [3, 3, 3], 'all three answered on the second connection');
  t.equal(tls.handshakes, 2);
  // Idle: our side closes after idleMs; the next query opens a new connection.
  await new Promise((r) => setTimeout(r, 400));
  const later = await exchange(tls, 'r4.example');
  t.equal(later.answer === null ? later.failure : decode(later.answer).rcode, 3, 'answered after the idle close');
  t.equal(tls.handshakes, 3, 'on a new connection');
});
