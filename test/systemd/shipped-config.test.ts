// The shipped config's commented examples are real settings: uncommented, every one of them
// is accepted by the config parser (buildConfig, as `sinkhole serve --config` reads it), and
// the examples the networks we serve need are there: an AD domain, a router's reverse zone,
// local names, a DoT upstream.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildConfig, SERVER_OPTIONS } from '../../src/config/config.js';
import { makeCertificates, needTool } from '../helpers/tls-peers.js';
import pino from 'pino';
import { GroupRuntime } from '../../src/stages/policy/group-setup.js';
import { parseAt } from '../../src/stages/policy/schedules.js';

const SHIPPED = join(import.meta.dirname, '..', '..', 'systemd', 'sinkhole.conf');
const FILE_OPTIONS = new Set(SERVER_OPTIONS.filter((o) => o.inFile).map((o) => o.name));

/** The `#key value` lines whose key is a setting of the file. */
function commentedSettings(text: string): string[] {
  return text.split('\n').filter((l) => {
    const m = /^#([a-z0-9-]+)\s+\S/.exec(l);
    return m !== null && FILE_OPTIONS.has(m[1]!);
  });
}

t.test('the shipped config carries the network examples, commented out', async (t) => {
  const text = readFileSync(SHIPPED, 'utf8');
  const examples = commentedSettings(text);
  for (const line of ['#forward-zone corp.example 192.168.1.5 192.168.1.6', '#forward-zone 168.192.in-addr.arpa 192.168.1.1',
    '#hosts-file /etc/sinkhole/hosts', '#local-domain lan', '#private-reverse forward', '#upstream tls://9.9.9.9#dns.quad9.net']) {
    t.ok(examples.includes(line), `${line}`);
  }
  t.same(buildConfig(['--config', SHIPPED], { needUpstreams: false }).forwardZones, [], 'as shipped, no forward-zone is in force');
});

t.test('with every commented setting uncommented, the config parser accepts the file', async (t) => {
  if (!needTool(t, 'openssl', 'openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-conf-'));
  const certs = makeCertificates();
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(certs.dir, { recursive: true, force: true });
  });
  // The files the examples name, made for real in a temp copy of /etc/sinkhole.
  const etc = join(dir, 'etc');
  mkdirSync(join(etc, 'tls'), { recursive: true });
  mkdirSync(join(etc, 'blocklists'));
  copyFileSync(certs.cert, join(etc, 'tls', 'fullchain.pem'));
  copyFileSync(certs.key, join(etc, 'tls', 'privkey.pem'));
  writeFileSync(join(etc, 'hosts'), '192.168.1.20 nas\n');
  writeFileSync(join(etc, 'admin-token'), 'a-long-enough-admin-token-for-the-test\n');
  const shipped = readFileSync(SHIPPED, 'utf8');
  const uncommented = shipped.split('\n').map((l) => (commentedSettings(l).length === 1 ? l.slice(1) : l)).join('\n')
    .replaceAll('/etc/sinkhole/', `${etc}/`).replaceAll('/var/lib/sinkhole', join(dir, 'state'));
  t.not(uncommented, shipped);
  const copy = join(dir, 'sinkhole.conf');
  writeFileSync(copy, uncommented);

  const config = buildConfig(['--config', copy]);
  t.same(config.forwardZones.map((z) => [z.zone, z.upstreams.map((u) => u.label)]),
    [['corp.example', ['192.168.1.5:53', '192.168.1.6:53']], ['168.192.in-addr.arpa', ['192.168.1.1:53']]], 'the AD domain and the router\'s reverse zone');
  t.same(config.hostsFiles, [join(etc, 'hosts')]);
  t.equal(config.localDomain, 'lan');
  t.equal(config.privateReverse, 'forward');
  // The # in tls://9.9.9.9#dns.quad9.net is part of the value in a config file, not a comment.
  t.match(config.upstreams.find((u) => u.kind === 'tls'), { host: '9.9.9.9', port: 853, serverName: 'dns.quad9.net' }, 'the DoT upstream and its certificate name');
  t.ok(config.upstreams.some((u) => u.kind === 'https'), 'the DoH upstream (through the bootstrap server)');
});

t.test('config file comments: a # at the start of a line or after a space; not inside a value', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-conf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'sinkhole.conf');
  writeFileSync(file, '# a comment\nupstream tls://192.0.2.1#dns.example   # DoT, checked for dns.example\n  #local-domain lan\nlocal-domain home #not this\n');
  const config = buildConfig(['--config', file]);
  t.match(config.upstreams, [{ kind: 'tls', host: '192.0.2.1', serverName: 'dns.example' }]);
  t.equal(config.localDomain, 'home');
});

t.test('the office example (groups, schedules, block and allow lines), uncommented, compiles against the shipped bundles', async (t) => {
  const shipped = readFileSync(SHIPPED, 'utf8');
  const office = shipped.split('\n').filter((l) => /^#(group|schedule|block|allow)\s/.test(l)).map((l) => l.slice(1));
  t.ok(office.length >= 10, `${office.length} lines`);
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-conf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const copy = join(dir, 'sinkhole.conf');
  writeFileSync(copy, office.join('\n') + '\n');
  const config = buildConfig(['--config', copy, '--state-dir', join(dir, 'state')], { needUpstreams: false });
  // The project's blocklists folder: every bundle the example names must exist (in available/ at least).
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  const runtime = new GroupRuntime(config.policy, join(import.meta.dirname, '..', '..', 'blocklists'), log);
  t.teardown(() => runtime.close());
  const policy = runtime.compile();
  t.same(warnings, [], 'no bundle is unknown or pending');
  t.same(policy.groups.names, ['default', 'staff', 'admins', 'guests']);
  const staff = policy.groups.indexOf('staff');
  const at = (when: string) => parseAt(when, 'test');
  t.ok(policy.blockingAt(staff, at('mon 10:00')).includes('teams'), 'Teams blocks for staff in work hours');
  t.notOk(policy.blockingAt(staff, at('sat 10:00')).includes('teams'), 'not at the weekend');
  t.notOk(policy.blockingAt(staff, at('mon 12:30')).includes('whatsapp'), 'WhatsApp at lunch');
  t.ok(policy.blockingAt(staff, at('mon 14:00')).includes('whatsapp'), 'not after lunch');
  t.same(policy.blockingAt(policy.groups.indexOf('admins'), at('mon 10:00')), [], 'admins: none');
  t.ok(policy.blockingAt(policy.groups.indexOf('guests'), at('sun 23:00')).includes('signal'));
});
