// The declarations and the one parser: every default is valid, every Config field is filled,
// flags override the file, and each mistake gets one line naming where it is.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { COMMAND_NAMES } from '../../src/config/command.js';
import { buildConfig, configFrom, ConfigError, readCommandLine, SERVER_OPTIONS, UnreachableError } from '../../src/config/config.js';
import { AREAS } from '../../src/config/options/index.js';
import { defaultConfig, installRoot, SYSTEM_CONFIG } from '../../src/config/paths.js';
import { COMMANDS } from '../../src/main/commands/index.js';

function temp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-options-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('every option is declared once, takes a known command, and its defaults are valid', async (t) => {
  const all = [...SERVER_OPTIONS, ...COMMANDS.flatMap((c) => c.own)];
  // A name is declared once per command (pause's own --group is not the server's group line).
  const names = all.flatMap((o) => o.commands.map((c) => `${c} --${o.name}`));
  t.same(names.filter((n, i) => names.indexOf(n) !== i), [], 'no name declared twice for one command');
  for (const o of all) {
    t.ok(o.commands.length > 0 && o.commands.every((c) => (COMMAND_NAMES as readonly string[]).includes(c)), `--${o.name}: known commands`);
    t.ok(o.help.length > 0 && !o.help.includes('\n'), `--${o.name}: one line of help`);
    t.doesNotThrow(() => o.read(o.defaults.map((value) => ({ value, where: 'default' }))), `--${o.name}: its default parses`);
  }
  for (const c of COMMANDS) for (const o of c.own) t.same(o.commands, [c.name], `--${o.name} is ${c.name}'s own`);
  t.same(COMMANDS.map((c) => c.name), [...COMMAND_NAMES], 'every command has a declaration');
  t.ok(AREAS.every((a) => a.options.length > 0 && a.title.length > 0), 'every area has a title and options');
});

t.test('the defaults make a complete Config, as the README says', async (t) => {
  const config = configFrom(readCommandLine('serve', []).settings, { needUpstreams: false });
  const fields = Object.keys(config).sort();
  t.same(fields, [
    'admin', 'adminHostnames', 'adminToken', 'allowNets', 'anyQueries', 'blockedTtl', 'blocklists', 'bootstrap', 'cacheMaxTtl', 'cacheMinTtl',
    'cacheSize', 'clientNames', 'exemptClients', 'fleetRole', 'forwardZones', 'history', 'historyDays', 'hostsFiles', 'listen', 'listenHttps', 'listenIsDefault', 'listenTls',
    'localDomain', 'logLevel', 'maxInflight', 'maxInflightPerClient', 'networkRateLimit', 'nodeName', 'policy', 'privateReverse', 'queryLog', 'queryLogMode',
    'rateBurst', 'rateExempt', 'rateLimit', 'redis', 'redisCa', 'redisPasswordFile', 'resolvConf', 'servfailTtl', 'sinkholeIpv4', 'sinkholeIpv6', 'site',
    'staleMaxAge', 'stateDir', 'tcpIdleTimeoutMs', 'tcpMaxConnections', 'tcpMaxPerClient', 'tlsCert', 'tlsKey', 'udpMaxWaitMs', 'upstreamCa', 'upstreamPortReuse', 'upstreamSource', 'upstreamTimeoutMs',
    'upstreams', 'workers',
  ]);
  t.ok(fields.every((f) => (config as unknown as Record<string, unknown>)[f] !== undefined), 'no field left undefined');
  t.match(config, {
    listen: [{ label: '127.0.0.1:5353' }, { label: '[::1]:5353' }], listenIsDefault: true, upstreams: [], upstreamSource: 'none',
    blocklists: './blocklists', sinkholeIpv4: '127.0.0.1', sinkholeIpv6: '::1', blockedTtl: 10, cacheSize: 10000, cacheMinTtl: 0,
    cacheMaxTtl: 86400, servfailTtl: 3, upstreamTimeoutMs: 1000, upstreamPortReuse: 1, tcpIdleTimeoutMs: 10000, tcpMaxConnections: 256, logLevel: 'info',
    exemptClients: [], workers: 1, admin: null, adminToken: null, queryLog: null, queryLogMode: { kind: 'all' }, resolvConf: '/etc/resolv.conf',
    forwardZones: [], anyQueries: 'minimal', privateReverse: 'local', hostsFiles: [], localDomain: null, clientNames: [], adminHostnames: [],
    listenTls: [], listenHttps: [], tlsCert: null, tlsKey: null, upstreamCa: null, bootstrap: [],
    stateDir: './state', policy: { groups: [], schedules: [], rules: [], listUrls: [], stateDir: './state' },
    redis: null, redisPasswordFile: null, redisCa: null, site: 'default', fleetRole: 'replica',
  });
  t.equal(config.allowNets?.length, 9, 'the private networks and loopback');
});

t.test('flags override the file; a repeatable flag replaces the file\'s lines; off means null', async (t) => {
  const dir = temp(t);
  const conf = join(dir, 'sinkhole.conf');
  writeFileSync(conf, [
    'listen 127.0.0.1:5301', 'listen 127.0.0.1:5302', 'upstream 192.0.2.1', 'upstream 192.0.2.2', 'blocked-ttl 99',
    'cache-size 5   # a comment', '', '# only a comment', 'admin off', 'query-log off', 'allow-net 192.168.0.0/16', 'allow-net any',
  ].join('\n'));
  const c = buildConfig(['--config', conf, '--blocked-ttl', '5', '--listen=127.0.0.1:5399']);
  t.same(c.listen.map((l) => l.label), ['127.0.0.1:5399'], 'the flag replaced both listen lines');
  t.equal(c.listenIsDefault, false);
  t.same(c.upstreams.map((u) => u.label), ['192.0.2.1:53', '192.0.2.2:53'], 'repeatable lines of the file, port 53 added');
  t.equal(c.upstreamSource, 'configuration');
  t.equal(c.blockedTtl, 5, 'the flag wins');
  t.equal(c.cacheSize, 5, 'the file, less its comment');
  t.equal(c.admin, null);
  t.equal(c.queryLog, null);
  t.equal(c.allowNets, null, '`any` anywhere: every client');
});

t.test('each mistake: one line naming where, as ConfigError (exit 2)', async (t) => {
  const dir = temp(t);
  const conf = join(dir, 'bad.conf');
  const fails = (args: string[], pattern: RegExp | string, command: (typeof COMMAND_NAMES)[number] = 'serve', own = COMMANDS.find((c) => c.name === command)!.own) => {
    try {
      const input = readCommandLine(command, args, own);
      configFrom(input.settings, { needUpstreams: false });
      for (const o of own) input.settings.get(o);
      t.fail(`${args.join(' ')}: should fail`);
    } catch (err) {
      t.ok(err instanceof ConfigError && (err as ConfigError).exitCode === 2, `${args.join(' ')}: ConfigError, exit 2`);
      t.match((err as Error).message, pattern);
      t.notMatch((err as Error).message, /\n/, 'one line');
    }
  };
  fails(['--cache-size', '1', '--cache-size', '2'], 'option --cache-size is given twice; give it once');
  fails(['--cache-size'], 'option --cache-size needs a value (see "sinkhole serve --help")');
  fails(['--cache-size', '--workers', '2'], 'option --cache-size needs a value');
  fails(['--cache-size', '-1'], '--cache-size: "-1" must be a whole number from 0 to 10000000');
  fails(['--cache-min-ttl', '600', '--cache-max-ttl', '60'], 'cache-min-ttl (600) is above cache-max-ttl (60); lower one of them');
  fails(['--sinkhole-ipv4', '::1'], '--sinkhole-ipv4: "::1" is not an IPv4 address');
  fails(['--exempt-client', '192.168.1.300'], /^--exempt-client: /);
  fails(['--query-log-mode', 'some'], '--query-log-mode: "some" must be all, blocked or sample:N');
  fails(['-x'], 'unknown option -x (see "sinkhole serve --help")');
  fails(['--cache-size', '5'], 'option --cache-size is not for "sinkhole list" (see "sinkhole list --help")', 'list');
  fails(['--json=yes'], 'option --json takes no value (see "sinkhole check --help")', 'check');
  fails(['--type', 'BOGUS'], '--type: "BOGUS" is not a query type', 'check');
  fails(['--client', '10.0.0.300/8'], '--client: "10.0.0.300/8" is neither an IP address nor a client name', 'check');
  fails(['--timeout', '0'], '--timeout: "0" must be a number of seconds above 0', 'wait-ready');
  fails(['--config', join(dir, 'missing.conf')], `cannot read config file ${join(dir, 'missing.conf')}: ENOENT; create it, or pass --config FILE`);
  writeFileSync(conf, 'workers 2\nworkers 3\n');
  fails(['--config', conf], `${conf}:2: "workers" is set twice; set it once`);
  writeFileSync(conf, '\nconfig /etc/other.conf\n');
  fails(['--config', conf], `${conf}:2: unknown setting "config"`);
  writeFileSync(conf, 'type AAAA\n');
  fails(['--config', conf], `${conf}:1: unknown setting "type"`, 'check');
  writeFileSync(conf, 'listen\n');
  fails(['--config', conf], `${conf}:1: expected "setting value", found "listen"`);
  writeFileSync(conf, 'admin 192.0.2.1:8053\n');
  fails(['--config', conf], `${conf}:1: the admin API on 192.0.2.1:8053 would be reachable from the network`);
  t.equal(new UnreachableError('x').exitCode, 3, 'unreachable: exit 3');
});

t.test('operands, switches and --', async (t) => {
  const own = COMMANDS.find((c) => c.name === 'check')!.own;
  const input = readCommandLine('check', ['x.example', '--json', '--type=aaaa', '--client', '192.0.2.7'], own);
  t.same(input.operands, ['x.example']);
  t.same(own.map((o) => input.settings.get(o)), [28, '192.0.2.7', null, true, false], 'type, client, at (not given), json, resolve');
  t.same(readCommandLine('check', ['--', '--odd'], own).operands, ['--odd'], 'after --, everything is an operand');
  t.equal(readCommandLine('check', ['x', '--bogus', '--help'], own).help, true, 'asking for help wins over a mistake');
  t.equal(readCommandLine('check', ['--', '--help'], own).help, false, 'a name after -- is not a flag');
});

t.test('the config file of an installed copy: /etc/sinkhole/sinkhole.conf under its root, when it exists', async (t) => {
  t.equal(installRoot('/opt/sinkhole'), '');
  t.equal(installRoot('/usr/lib/sinkhole'), '');
  t.equal(installRoot('/usr/lib/node_modules/sinkhole'), '');
  t.equal(installRoot('/tmp/stage/opt/sinkhole'), '/tmp/stage');
  t.equal(installRoot('/home/me/src/sinkhole'), null, 'a checkout is not an installed copy');
  const dir = temp(t);
  const app = join(dir, 'opt', 'sinkhole');
  mkdirSync(app, { recursive: true });
  t.match(defaultConfig({}, app), { path: null }, 'not there: none');
  mkdirSync(join(dir, 'etc', 'sinkhole'), { recursive: true });
  writeFileSync(join(dir, SYSTEM_CONFIG), 'cache-size 1\n');
  t.match(defaultConfig({}, app), { path: join(dir, SYSTEM_CONFIG) }, 'there: read');
  t.match(defaultConfig({ SINKHOLE_CONFIG: '/x.conf' }, app), { path: '/x.conf' }, 'SINKHOLE_CONFIG wins');
  t.match(defaultConfig({ SINKHOLE_CONFIG: '' }, app), { path: null }, 'SINKHOLE_CONFIG empty: none');
  t.match(defaultConfig({}, '/home/me/src/sinkhole'), { path: null }, 'a checkout reads none');
});
