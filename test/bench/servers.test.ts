// The benchmark's reference servers, started exactly as `npm run bench` configures them
// (bench/servers.ts), must do the work their figures are read as: a listed name answered
// 127.0.0.1 by the server itself, a name under the upstream's zone forwarded to the
// upstream. Until 2026-12-02 Unbound answered every *.bench.test query NXDOMAIN from its
// default local zone for test. (RFC 6761) and forwarded none: its W2-W4 figures measured
// that. Also: the benchmark's answer check reads the answer section (not the last record of
// the message), and dnsperf's response codes reach the benchmark's report.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { otherRcodes, runDnsperf } from '../../bench/dnsperf.js';
import { FORWARD_DOMAIN, writeLists } from '../../bench/generate.js';
import { answerIs } from '../../bench/processes.js';
import { dnsmasqArgs, UPSTREAM_A, writeNsdConfig, writeUnboundConfig } from '../../bench/servers.js';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { needTool } from '../helpers/tls-peers.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const LISTED = 'chat.listed-bench.test';

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The upstream the references forward to: every name answered UPSTREAM_A, with an NS and its address after it. */
async function wildcardUpstream(t: Test): Promise<TestUpstream> {
  const upstream = await startUpstream((q) => ({
    rcode: q.name.startsWith('nx') ? 3 : 0,
    answers: q.name.startsWith('nx') ? [] : q.type === T.A ? [{ name: q.name, type: T.A, ttl: 60, data: UPSTREAM_A }] : [],
    authority: [{ name: FORWARD_DOMAIN, type: T.NS, ttl: 60, data: `ns.${FORWARD_DOMAIN}` }],
    additional: [{ name: `ns.${FORWARD_DOMAIN}`, type: T.A, ttl: 60, data: '127.0.0.1' }],
  }));
  t.teardown(() => upstream.close());
  return upstream;
}

function start(t: Test, command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore' });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Asks until the server answers (it is starting), at most 10 s. */
async function answering(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      await ask(port, `probe.${LISTED}`, T.A);
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
    }
  }
}

function scratch(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bench-servers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'lists'));
  return dir;
}

for (const server of ['unbound', 'dnsmasq'] as const) {
  t.test(`${server} as the benchmark runs it blocks the listed name and forwards ${FORWARD_DOMAIN}`, async (t) => {
    if (!needTool(t, server, server === 'unbound' ? 'unbound' : 'dnsmasq-base')) return;
    const dir = scratch(t);
    const upstream = await wildcardUpstream(t);
    const lists = writeLists(dir, [LISTED]);
    const port = await freeUdpPort();
    if (server === 'unbound') start(t, 'unbound', ['-d', '-c', writeUnboundConfig(dir, lists.unboundConf, port, upstream.port)]);
    else start(t, 'dnsmasq', dnsmasqArgs(dir, lists.dnsmasqConf, port, upstream.port));
    await answering(port);

    const listed = await ask(port, `x1.${LISTED}`, T.A);
    t.same(listed.answers.map((a) => a.text), ['127.0.0.1'], 'a name below a listed one: 127.0.0.1 from the server');
    const before = upstream.queries.length;
    const qname = `u1-check.${FORWARD_DOMAIN}`;
    const forwarded = await ask(port, qname, T.A);
    t.equal(forwarded.rcode, 0, `${qname}: NOERROR`);
    t.same(forwarded.answers.map((a) => a.text), [UPSTREAM_A], `${qname}: the upstream's address`);
    t.ok(upstream.queries.slice(before).some((q) => q.name === qname), `${qname} reached the upstream`);
    t.ok(await answerIs(port, `u2-check.${FORWARD_DOMAIN}`, UPSTREAM_A), "the benchmark's check sees the forwarded address");
    t.notOk(await answerIs(port, `u3-check.${FORWARD_DOMAIN}`, '127.0.0.1'),
      "the benchmark's check reads the answer section, not the additional record after it");
  });
}

t.test(`nsd as the benchmark runs it answers every name under ${FORWARD_DOMAIN} with ${UPSTREAM_A}`, async (t) => {
  if (!needTool(t, 'nsd', 'nsd')) return;
  const dir = scratch(t);
  const port = await freeUdpPort();
  start(t, 'nsd', ['-d', '-c', writeNsdConfig(dir, port)]);
  const until = Date.now() + 10_000;
  while (!(await answerIs(port, `w1.${FORWARD_DOMAIN}`, UPSTREAM_A).catch(() => false)) && Date.now() < until);
  t.ok(await answerIs(port, `any-name-${Date.now()}.${FORWARD_DOMAIN}`, UPSTREAM_A), 'a name never asked before');
});

t.test("dnsperf's response codes reach the benchmark's report", async (t) => {
  if (!needTool(t, 'dnsperf', 'dnsperf')) return;
  const dir = scratch(t);
  const upstream = await wildcardUpstream(t);
  const file = join(dir, 'queries.txt');
  writeFileSync(file, [...Array.from({ length: 30 }, (_, i) => `ok${i}.${FORWARD_DOMAIN} A`), ...Array.from({ length: 10 }, (_, i) => `nx${i}.${FORWARD_DOMAIN} A`)].join('\n') + '\n');
  const r = await runDnsperf(0, upstream.port, file, 1, { outstanding: 4 });
  t.ok(r.completed > 0, `dnsperf got answers (${r.completed})`);
  t.equal((r.rcodes.NOERROR ?? 0) + (r.rcodes.NXDOMAIN ?? 0), r.completed, 'every answer counted by its code');
  t.ok((r.rcodes.NXDOMAIN ?? 0) > 0 && (r.rcodes.NOERROR ?? 0) > (r.rcodes.NXDOMAIN ?? 0), `NXDOMAIN for the nx names (${JSON.stringify(r.rcodes)})`);
  t.match(otherRcodes(r), /^NXDOMAIN [\d,]+$/, 'the report names the answers other than NOERROR');
  t.equal(otherRcodes({ ...r, rcodes: { NOERROR: 5 } }), '', 'nothing to report when all are NOERROR');
});

t.test("the benchmark's check takes a reply cut short for a wrong answer, not an exception", async (t) => {
  const server = createSocket('udp4');
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  // The query's header and question back, with one answer announced and 3 bytes of it sent.
  server.on('message', (msg, from) => {
    const reply = Buffer.concat([msg, Buffer.from([0xc0, 0x0c, 0x00])]);
    reply.writeUInt16BE(0x8180, 2);
    reply.writeUInt16BE(1, 6);
    server.send(reply, from.port, from.address);
  });
  t.equal(await answerIs(server.address().port, `cut.${FORWARD_DOMAIN}`, UPSTREAM_A), false);
});
