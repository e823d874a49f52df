// The DoT and DoH listeners against real clients: kdig +tls, kdig +https (POST and GET),
// curl --doh-url (resolving a name through our listener, then fetching from a local HTTP
// server). The listeners feed the running server's resolver, so blocking and allow-net
// apply as over UDP. Also: cert/key errors, SIGHUP's certificate reload, idle timeout, cap.
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { buildQuery, decode, T } from '../helpers/dns.js';
import { serverWithUpstream, type TestServer } from '../helpers/server.js';
import { freeTcpPort, makeCertificates, needTool, type Certificates } from '../helpers/tls-peers.js';
import { listenTls } from '../../src/net/tls.js';
import { listenHttps } from '../../src/net/https.js';
import { parseEndpoint, type Endpoint } from '../../src/net/endpoint.js';
import type { QueryHandler } from '../../src/net/udp.js';
import { HttpsUpstream } from '../../src/stages/forward/transports/https.js';
import { parseUpstream, type EncryptedUpstream } from '../../src/stages/forward/upstream-url.js';
import { mustKey } from '../../src/wire/names.js';

let certs: Certificates;
t.before(() => {
  certs = makeCertificates();
});
t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }));

const LIMITS = { idleTimeoutMs: 10_000, maxConnections: 64 };

interface Setup {
  tlsPort: number;
  httpsPort: number;
  server: TestServer;
  upstreamNames: () => string[];
}

/** The real server (`sinkhole serve` in-process) with --listen-tls and --listen-https. */
async function setup(t: Test, args: string[] = [], cert = certs.cert): Promise<Setup> {
  const tlsPort = await freeTcpPort();
  const httpsPort = await freeTcpPort();
  const { s, upstream } = await serverWithUpstream(t, {
    handler: (q) => ({ answers: q.type === T.A ? [{ name: q.rawName, type: T.A, ttl: 300, data: q.name === 'site.test' ? '127.0.0.1' : '192.0.2.80' }] : [] }),
    lists: { 'msn.txt': 'messenger.hotmail.com\n' },
    args: ['--listen-tls', `127.0.0.1:${tlsPort}`, '--listen-https', `127.0.0.1:${httpsPort}`, '--tls-cert', cert, '--tls-key', certs.key, ...args],
  });
  return { tlsPort, httpsPort, server: s, upstreamNames: () => upstream.queries.map((q) => q.name) };
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const kdig = (port: number, extra: string[], name: string, type = 'A') =>
  run('kdig', [`@127.0.0.1`, '-p', String(port), `+tls-ca=${certs.ca}`, '+tls-hostname=dns.test', ...extra, '+timeout=3', '+retry=0', name, type]);

t.test('kdig +tls: answers, blocked names, many queries on one connection', async (t) => {
  if (!needTool(t, 'kdig', 'knot-dnsutils')) return;
  const s = await setup(t);
  const r = await kdig(s.tlsPort, ['+tls'], 'www.example.org');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /status: NOERROR/);
  t.match(r.stdout, /www\.example\.org\.\s+\d+\s+IN\s+A\s+192\.0\.2\.80/, 'the upstream\'s answer');
  t.match(r.stdout, /TLS session \(TLS1\.3\)|TLS1\.3/, 'over TLS 1.3');
  const blocked = await kdig(s.tlsPort, ['+tls'], 'gateway.messenger.hotmail.com');
  t.match(blocked.stdout, /gateway\.messenger\.hotmail\.com\.\s+\d+\s+IN\s+A\s+127\.0\.0\.1/, 'blocked: the sinkhole address');
  t.notOk(s.upstreamNames().includes('gateway.messenger.hotmail.com'), 'never sent upstream');
  // kdig sends several names on one connection when given several queries.
  t.equal(s.server.server.pipeline.queries, 2, 'counted by the pipeline like UDP and TCP queries');
  const many = await run('kdig', ['@127.0.0.1', '-p', String(s.tlsPort), '+tls', `+tls-ca=${certs.ca}`, '+tls-hostname=dns.test', '+timeout=3', '+keepopen',
    'a1.example', 'A', 'a2.example', 'A', 'a3.example', 'A']);
  t.equal((many.stdout.match(/status: NOERROR/g) ?? []).length, 3, 'three answers over a kept-open connection');
});

t.test('kdig +https: POST and GET at /dns-query', async (t) => {
  if (!needTool(t, 'kdig', 'knot-dnsutils')) return;
  const s = await setup(t);
  const post = await kdig(s.httpsPort, ['+https'], 'post.example');
  t.equal(post.code, 0, post.stderr);
  t.match(post.stdout, /post\.example\.\s+\d+\s+IN\s+A\s+192\.0\.2\.80/);
  t.match(post.stdout, /HTTP session \(HTTP\/2-POST\)-\(dns\.test\/dns-query\)-\(status: 200\)/, 'HTTP/2 POST');
  const get = await kdig(s.httpsPort, ['+https', '+https-get'], 'get.example');
  t.equal(get.code, 0, get.stderr);
  t.match(get.stdout, /get\.example\.\s+\d+\s+IN\s+A\s+192\.0\.2\.80/);
  t.match(get.stdout, /HTTP session \(HTTP\/2-GET\)/, 'HTTP/2 GET');
  const blocked = await kdig(s.httpsPort, ['+https'], 'messenger.hotmail.com', 'AAAA');
  t.match(blocked.stdout, /messenger\.hotmail\.com\.\s+\d+\s+IN\s+AAAA\s+::1/, 'blocked over DoH too');
});

t.test('curl --doh-url resolves a name through the DoH listener, then fetches from it', async (t) => {
  if (!needTool(t, 'curl', 'curl')) return;
  const s = await setup(t);
  const web: HttpServer = createHttpServer((_req, res) => res.end('hello from loopback\n'));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => web.close(() => r())));
  const webPort = (web.address() as { port: number }).port;
  const r = await run('curl', ['-sS', '--max-time', '8', '-4', '--cacert', certs.ca, '--doh-url', `https://127.0.0.1:${s.httpsPort}/dns-query`, `http://site.test:${webPort}/`]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'hello from loopback\n', 'site.test resolved to 127.0.0.1 through our DoH listener');
  t.ok(s.upstreamNames().includes('site.test'), 'the name went through the resolver to the upstream');
  const blocked = await run('curl', ['-sS', '--max-time', '8', '-4', '--cacert', certs.ca, '--doh-url', `https://127.0.0.1:${s.httpsPort}/dns-query`, `http://messenger.hotmail.com:${webPort}/`]);
  t.equal(blocked.stdout, 'hello from loopback\n', 'a blocked name resolves to the sinkhole address (here the loopback web server)');
  t.notOk(s.upstreamNames().includes('messenger.hotmail.com'), 'and was never asked upstream');
});

function dohRequest(port: number, o: { method: string; path: string; body?: Buffer; contentType?: string }): Promise<{ status: number; type: string; body: Buffer; alpn: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port, method: o.method, path: o.path, ca: readFileSync(certs.ca), servername: 'dns.test',
      headers: o.body ? { 'content-type': o.contentType ?? 'application/dns-message', 'content-length': o.body.length } : {},
    }, (res) => {
      const alpn = String((res.socket as TLSSocket).alpnProtocol);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks), alpn }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

t.test('DoH over HTTP/1.1: GET and POST answered; wrong path, method or type refused with a status', async (t) => {
  const s = await setup(t);
  const q = buildQuery('h1.example', T.A, { id: 0 });
  const get = await dohRequest(s.httpsPort, { method: 'GET', path: `/dns-query?dns=${q.toString('base64url')}` });
  t.equal(get.status, 200);
  t.equal(get.alpn, 'false', 'plain HTTP/1.1 (no ALPN)');
  t.equal(get.type, 'application/dns-message');
  t.equal(decode(get.body).answers[0]?.text, '192.0.2.80');
  const post = await dohRequest(s.httpsPort, { method: 'POST', path: '/dns-query', body: buildQuery('h1post.example', T.A, { id: 0 }) });
  t.equal(decode(post.body).answers[0]?.text, '192.0.2.80');
  t.equal((await dohRequest(s.httpsPort, { method: 'GET', path: '/other' })).status, 404);
  t.equal((await dohRequest(s.httpsPort, { method: 'PUT', path: '/dns-query', body: q })).status, 405);
  t.equal((await dohRequest(s.httpsPort, { method: 'POST', path: '/dns-query', body: q, contentType: 'text/plain' })).status, 415);
  t.equal((await dohRequest(s.httpsPort, { method: 'GET', path: '/dns-query?dns=***' })).status, 400);
  t.equal((await dohRequest(s.httpsPort, { method: 'GET', path: '/dns-query?dns=AAAA' })).status, 400, 'too short for a DNS message');
});

t.test('client address rules apply: allow-net refuses a DoT and a DoH client it does not list', async (t) => {
  if (!needTool(t, 'kdig', 'knot-dnsutils')) return;
  const s = await setup(t, ['--allow-net', '10.0.0.0/8']);
  const dot = await kdig(s.tlsPort, ['+tls'], 'www.example.org');
  t.match(dot.stdout, /status: REFUSED/, 'DoT from 127.0.0.1 refused');
  const doh = await kdig(s.httpsPort, ['+https'], 'www.example.org');
  t.match(doh.stdout, /status: REFUSED/, 'DoH from 127.0.0.1 refused');
  t.notOk(s.upstreamNames().includes('www.example.org'), 'nothing forwarded');
});

t.test('--tls-cert/--tls-key errors are one line; reloadCertificate swaps the pair and keeps the old on error', async (t) => {
  const handle: QueryHandler = () => undefined;
  const at = parseEndpoint('127.0.0.1:0', 853) as Endpoint;
  await t.rejects(listenTls(at, handle, { ...LIMITS, cert: join(certs.dir, 'missing.pem'), key: certs.key }),
    { message: `cannot read --tls-cert ${join(certs.dir, 'missing.pem')}: no such file; give a readable PEM file` });
  await t.rejects(listenHttps(at, handle, { ...LIMITS, cert: certs.cert, key: certs.otherKey }),
    { message: `--tls-cert ${certs.cert} and --tls-key ${certs.otherKey}: the key does not belong to the certificate; give the certificate and its own private key, both PEM` });
  await t.rejects(listenTls(at, handle, { ...LIMITS, cert: certs.ca.replace('ca.pem', 'index.txt'), key: certs.key }), { message: /not a PEM certificate and key/ });

  // A copy of the pair that the test can replace, as certbot would.
  const cert = join(certs.dir, 'live.pem');
  copyFileSync(certs.cert, cert);
  const tlsPort = await freeTcpPort();
  const listener = await listenTls(parseEndpoint(`127.0.0.1:${tlsPort}`, 853) as Endpoint, handle, { ...LIMITS, cert, key: certs.key });
  t.teardown(() => listener.close());
  const notAfter = (): Promise<string> => new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'dns.test', rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().valid_to);
      socket.destroy();
    });
    socket.on('error', reject);
  });
  const before = await notAfter();
  copyFileSync(certs.expiredCert, cert);
  listener.reloadCertificate();
  const after = await notAfter();
  t.not(after, before, 'the new certificate is served');
  t.match(after, /2020/);
  writeFileSync(cert, 'not a certificate\n');
  t.throws(() => listener.reloadCertificate(), { message: /not a PEM certificate and key/ });
  t.equal(await notAfter(), after, 'the old pair stays in use');
});

t.test('idle DoT connections are closed; at the connection cap the oldest idle one makes room', async (t) => {
  const s = await setup(t, ['--tcp-idle-timeout', '300', '--tcp-max-connections', '2']);
  const open = (): Promise<{ secured: boolean; closed: Promise<number> }> => new Promise((resolve) => {
    const started = Date.now();
    const socket = tlsConnect({ host: '127.0.0.1', port: s.tlsPort, ca: readFileSync(certs.ca), servername: 'dns.test' });
    const closed = new Promise<number>((r) => socket.on('close', () => r(Date.now() - started)));
    socket.on('error', () => undefined);
    socket.once('secureConnect', () => resolve({ secured: true, closed }));
    socket.once('close', () => resolve({ secured: false, closed }));
  });
  const a = await open();
  const b = await open();
  t.ok(a.secured && b.secured, 'two connections within the cap');
  // At the cap the connection idle the longest makes room for the new one (RFC 7766 6.2.3), as over TCP.
  const c = await open();
  t.ok(c.secured, 'a third connection over the cap is served');
  const evictedMs = await a.closed;
  t.ok(evictedMs < 250, `the oldest idle connection was closed to make room (${evictedMs} ms)`);
  const idleMs = await c.closed;
  t.ok(idleMs >= 250 && idleMs < 3000, `an idle connection is closed after the idle timeout (${idleMs} ms)`);
  await b.closed;
});

t.test('SIGHUP (reopenLogs) makes the running server\'s DoT and DoH listeners serve a renewed certificate', async (t) => {
  const cert = join(certs.dir, 'renewed.pem');
  copyFileSync(certs.cert, cert);
  const s = await setup(t, [], cert);
  const notAfter = (port: number): Promise<string> => new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'dns.test', rejectUnauthorized: false, ALPNProtocols: ['h2', 'dot'] }, () => {
      resolve(socket.getPeerCertificate().valid_to);
      socket.destroy();
    });
    socket.on('error', reject);
  });
  const before = await notAfter(s.tlsPort);
  copyFileSync(certs.expiredCert, cert);
  s.server.server.reopenLogs();
  t.match(await notAfter(s.tlsPort), /2020/, 'DoT serves the new certificate');
  t.match(await notAfter(s.httpsPort), /2020/, 'DoH too');
  t.notMatch(before, /2020/);
  writeFileSync(cert, 'garbage\n');
  s.server.server.reopenLogs();
  t.ok(s.server.logs.some((l) => l.level === 50 && /not a PEM certificate and key; .*still serving the previous certificate/.test(String(l.msg))), 'a bad pair is logged');
  t.match(await notAfter(s.tlsPort), /2020/, 'and the previous one keeps serving');
});

t.test('DoH over HTTP/2: 1,000 queries on one session, beyond the listener\'s 256 streams at once', async (t) => {
  const s = await setup(t);
  const https = new HttpsUpstream(parseUpstream(`https://127.0.0.1:${s.httpsPort}/dns-query#dns.test`) as EncryptedUpstream, { ca: [readFileSync(certs.ca)] });
  t.teardown(() => https.close());
  const names = Array.from({ length: 1000 }, (_, i) => `s${i}.example`);
  const failures: string[] = [];
  const answers = await Promise.all(names.map((name, i) => new Promise<Buffer | null>((resolve) => {
    https.exchange(buildQuery(name, T.A), { qnameKey: mustKey(name), qtype: T.A, qclass: 1 }, Date.now() + 20_000, (answer, why) => {
      if (answer === null) failures.push(`#${i}: ${why}`);
      resolve(answer);
    });
  })));
  // Every failure with its cause (no answer and why; or whose question and which rcode came back), so that a failure says where to look.
  for (const [i, a] of answers.entries()) {
    if (a === null) continue;
    const m = decode(a);
    if (m.question?.name !== names[i] || m.answers[0]?.text !== '192.0.2.80') failures.push(`#${i}: ${m.question?.name} rcode ${m.rcode}`);
  }
  t.equal(failures.length, 0, 'every query answered with its own answer', { failures: failures.slice(0, 20) });
  t.equal(https.handshakes, 1, 'on one HTTP/2 session');
});
