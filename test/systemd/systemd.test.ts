// Deployment: install.sh and uninstall.sh answer --help; DESTDIR stages files that name the
// final paths, and the staged unit passes systemd-analyze verify where it will live; only
// git's view of blocklists/ is installed; an upgrade updates shipped lists, keeps edited
// ones (writing NAME.txt.new beside them), keeps the enabled/disabled state and local.txt;
// a new version that does not answer is rolled back; a node inside a home folder is refused.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { appendFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { git, ROOT, sourceTree } from '../helpers/source-tree.js';

const inCi = process.env.CI === 'true';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

function missing(t: Test, tool: string): boolean {
  if (have(tool)) return false;
  t.notOk(inCi, `${tool} is installed in CI`);
  t.comment(`skipped: ${tool} is not installed here`);
  return true;
}

async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

type Run = SpawnSyncReturns<string>;
const install = (src: string, args: string[], env: Record<string, string> = {}): Run =>
  spawnSync('bash', [join(src, 'systemd', 'install.sh'), ...args], { encoding: 'utf8', timeout: 120000, env: { ...process.env, ...env } });

t.test('install.sh and uninstall.sh answer --help with their usage and nothing else', async (t) => {
  for (const script of ['install.sh', 'uninstall.sh']) {
    for (const flag of ['--help', '-h']) {
      const r = spawnSync('bash', [join(ROOT, 'systemd', script), flag], { encoding: 'utf8' });
      t.equal(r.status, 0, `${script} ${flag} succeeds`);
      t.equal(r.stderr, '', `${script} ${flag}: nothing on stderr`);
      t.match(r.stdout, new RegExp(`^Usage: ${script.replace('.', '\\.')} \\[OPTION\\]\\.\\.\\.\n`), `${script} ${flag} starts with its synopsis`);
      t.notMatch(r.stdout, /^(#|set |\s*case |\s*esac)/m, `${script} ${flag}: no shell lines`);
      t.match(r.stdout, /--prefix DIR/);
    }
    const bad = spawnSync('bash', [join(ROOT, 'systemd', script), '--bogus'], { encoding: 'utf8' });
    t.equal(bad.status, 2);
    t.equal(bad.stderr, `${script}: unknown option --bogus (see --help)\n`);
  }
  t.match(spawnSync('bash', [join(ROOT, 'systemd', 'uninstall.sh'), '--help'], { encoding: 'utf8' }).stdout, /--purge/);
  const timeout = spawnSync('bash', [join(ROOT, 'systemd', 'install.sh'), '--ready-timeout', '0.5'], { encoding: 'utf8' });
  t.equal(timeout.status, 2);
  t.equal(timeout.stderr, 'install.sh: --ready-timeout takes whole seconds, not "0.5"\n');
});

t.test('DESTDIR stages files that name the final paths; the staged unit passes systemd-analyze verify', async (t) => {
  const src = sourceTree(t);
  const stage = mkdtempSync(join(tmpdir(), 'sinkhole-stage-'));
  t.teardown(() => rmSync(stage, { recursive: true, force: true }));
  const r = install(src, [], { DESTDIR: stage });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /staged under .*; nothing started/);

  // What goes in /opt/sinkhole: the app and nothing else.
  const app = join(stage, 'opt/sinkhole');
  t.same(readdirSync(app).sort(), ['bin', 'blocklists', 'blocklists.sha256', 'dist', 'node_modules', 'package.json']);
  t.notOk(existsSync(join(app, 'dist/bench')), 'no benchmark');
  t.ok(existsSync(join(app, 'node_modules/pino/package.json')) && existsSync(join(app, 'node_modules/@pinojs/redact/package.json')), 'the production packages');
  for (const dev of ['tap', 'typescript', '@types', '@tapjs', 'playwright-core']) t.notOk(existsSync(join(app, 'node_modules', dev)), `no ${dev}`);
  if (existsSync(join(ROOT, 'src/net/batch-udp/build/Release/batch_udp.node'))) {
    t.same(readdirSync(join(app, 'node_modules/sinkhole-batch-udp')).sort(), ['build', 'package.json'], 'the native addon: package.json and the built .node, no sources');
    t.ok(existsSync(join(app, 'node_modules/sinkhole-batch-udp/build/Release/batch_udp.node')));
  }
  const empty = spawnSync('find', [app, '-type', 'd', '-empty'], { encoding: 'utf8' }).stdout.trim();
  t.equal(empty, '', 'no empty folders (no @scope left behind)');

  // Every file names /opt/sinkhole and /etc/sinkhole, never the staging folder.
  const leaks = spawnSync('grep', ['-rl', stage, stage], { encoding: 'utf8' }).stdout.trim();
  t.equal(leaks, '', 'no staged file mentions the staging folder');
  t.equal(readlinkSync(join(stage, 'usr/local/bin/sinkhole')), '/opt/sinkhole/bin/sinkhole', 'the command links to the final path');
  t.match(readFileSync(join(app, 'bin/sinkhole'), 'utf8'), '"/opt/sinkhole/dist/main/cli.js"');
  const unitPath = join(stage, 'etc/systemd/system/sinkhole.service');
  const unit = readFileSync(unitPath, 'utf8');
  t.match(unit, /^ExecStart=\/opt\/sinkhole\/bin\/sinkhole serve --config \/etc\/sinkhole\/sinkhole\.conf$/m);
  if (existsSync(join(ROOT, 'docs/man/sinkhole.8'))) {
    t.ok(existsSync(join(stage, 'usr/local/share/man/man8/sinkhole.8')) && existsSync(join(stage, 'usr/local/share/man/man5/sinkhole.conf.5')), 'the manual pages');
    t.match(unit, /^Documentation=man:sinkhole\(8\) man:sinkhole\.conf\(5\)$/m, 'named by the unit');
  }
  const conf = readFileSync(join(stage, 'etc/sinkhole/sinkhole.conf'), 'utf8');
  t.match(conf, /^blocklists \/etc\/sinkhole\/blocklists$/m);
  t.match(conf, /^admin 127\.0\.0\.1:8053$/m, 'the admin API on loopback, so "sinkhole stats" works');
  t.match(conf, /^#admin-token-file \/etc\/sinkhole\/admin-token$/m);
  t.match(conf, /^#state-dir \/var\/lib\/sinkhole$/m);
  t.equal(statSync(join(stage, 'etc/sinkhole/sinkhole.conf')).mode & 0o777, 0o640, 'the config is 0640 (the package gives it group sinkhole)');
  t.match(readFileSync(join(stage, 'usr/local/lib/sysusers.d/sinkhole.conf'), 'utf8'), /^u sinkhole - /m, 'the service user, for systemd-sysusers');

  for (const setting of ['User=sinkhole', 'Group=sinkhole', 'StateDirectory=sinkhole', 'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateDevices=yes',
    'Restart=on-failure', 'ExecReload=/bin/kill -HUP $MAINPID', 'RestrictAddressFamilies=AF_INET AF_INET6']) {
    t.match(unit, setting, setting);
  }
  t.notMatch(unit, /PrivateUsers=yes/, 'not PrivateUsers (it would take CAP_NET_BIND_SERVICE away)');

  if (missing(t, 'systemd-analyze') || missing(t, 'unshare')) return;
  // verify checks that ExecStart exists: in a private mount namespace the staged app is
  // mounted where the package will put it, /opt/sinkhole.
  const verify = (file: string) => spawnSync('unshare', ['-rm', 'sh', '-ec',
    'mount -t tmpfs none /opt; mkdir /opt/sinkhole; mount --bind "$1/opt/sinkhole" /opt/sinkhole; exec systemd-analyze verify "$2"', 'sh', stage, file],
  { encoding: 'utf8', env: { ...process.env, MANPATH: `${join(stage, 'usr/local/share/man')}:` } });
  const ok = verify(unitPath);
  t.equal(ok.status, 0, ok.stderr);
  t.equal(ok.stderr.trim(), '', 'no warnings');
  writeFileSync(join(stage, 'broken.service'), unit.replace('ProtectHome=yes', 'ProtectHome=sometimes'));
  t.match(verify(join(stage, 'broken.service')).stderr, /ProtectHome|protect home/i, 'a broken setting would be reported (the check can fail)');
  unlinkSync(join(stage, 'broken.service'));
  t.match(verify(join(stage, 'missing.service')).stderr, /missing\.service/, 'so would a missing unit');
});

t.test('manual pages in docs/man are installed, and the unit names them (verify finds them with man)', async (t) => {
  const src = sourceTree(t);
  mkdirSync(join(src, 'docs/man'), { recursive: true });
  writeFileSync(join(src, 'docs/man/sinkhole.8'), '.TH SINKHOLE 8\n.SH NAME\nsinkhole \\- DNS sinkhole resolver\n');
  writeFileSync(join(src, 'docs/man/sinkhole.conf.5'), '.TH SINKHOLE.CONF 5\n.SH NAME\nsinkhole.conf \\- settings\n');
  const stage = mkdtempSync(join(tmpdir(), 'sinkhole-stage-'));
  t.teardown(() => rmSync(stage, { recursive: true, force: true }));
  const r = install(src, [], { DESTDIR: stage });
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(join(stage, 'usr/local/share/man/man8/sinkhole.8')) && existsSync(join(stage, 'usr/local/share/man/man5/sinkhole.conf.5')));
  const unitPath = join(stage, 'etc/systemd/system/sinkhole.service');
  t.match(readFileSync(unitPath, 'utf8'), /^Documentation=man:sinkhole\(8\) man:sinkhole\.conf\(5\)$/m);
  if (missing(t, 'systemd-analyze') || missing(t, 'unshare') || missing(t, 'man')) return;
  const verify = spawnSync('unshare', ['-rm', 'sh', '-ec',
    'mount -t tmpfs none /opt; mkdir /opt/sinkhole; mount --bind "$1/opt/sinkhole" /opt/sinkhole; exec systemd-analyze verify "$2"', 'sh', stage, unitPath],
  { encoding: 'utf8', env: { ...process.env, MANPATH: `${join(stage, 'usr/local/share/man')}:` } });
  t.equal(verify.status, 0, verify.stderr);
  t.equal(verify.stderr, '');
  const bare = spawnSync('unshare', ['-rm', 'sh', '-ec',
    'mount -t tmpfs none /opt; mkdir /opt/sinkhole; mount --bind "$1/opt/sinkhole" /opt/sinkhole; exec systemd-analyze verify "$2"', 'sh', stage, unitPath],
  { encoding: 'utf8', env: { ...process.env, MANPATH: '/nonexistent' } });
  t.match(bare.stderr, /man sinkhole/, 'without the pages, verify would fail');
});

t.test('only git\'s view of blocklists/ is installed; outside git, the folder as found', async (t) => {
  const src = sourceTree(t);
  const committedMsn = readFileSync(join(src, 'blocklists/msn-messenger.txt'), 'utf8');
  writeFileSync(join(src, 'blocklists/untracked.txt'), 'untracked.example\n');
  appendFileSync(join(src, 'blocklists/msn-messenger.txt'), 'uncommitted-edit.example\n');
  renameSync(join(src, 'blocklists/web-messengers.txt'), join(src, 'blocklists/available/web-messengers.txt'));
  renameSync(join(src, 'blocklists/available/whatsapp.txt'), join(src, 'blocklists/whatsapp.txt'));
  writeFileSync(join(src, 'blocklists/local.txt'), 'developer-local.example\n');
  git(src, 'add', '-f', 'blocklists/local.txt');
  git(src, 'commit', '-q', '-m', 'a committed local.txt is still not shipped');

  // As under `sudo`: the checkout belongs to another user, which git refuses unless told.
  if (process.getuid?.() === 0) t.equal(spawnSync('chown', ['-hR', '65534:65534', src]).status, 0);
  const prefix = mkdtempSync(join(tmpdir(), 'sinkhole-root-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  const r = install(src, ['--prefix', prefix]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, 'install.sh: blocklists/ has changes git has not committed; installing the committed lists (git archive HEAD)\n');
  const lists = join(prefix, 'etc/sinkhole/blocklists');
  t.notOk(existsSync(join(lists, 'untracked.txt')), 'an untracked file is not installed');
  t.notMatch(readFileSync(join(prefix, 'opt/sinkhole/blocklists.sha256'), 'utf8'), /untracked|local/, 'nor recorded as shipped');
  t.equal(readFileSync(join(lists, 'msn-messenger.txt'), 'utf8'), committedMsn, 'an uncommitted edit is not installed');
  t.ok(existsSync(join(lists, 'web-messengers.txt')), 'the committed enable/disable state, not the checkout\'s');
  t.ok(existsSync(join(lists, 'available/whatsapp.txt')));
  t.notMatch(readFileSync(join(lists, 'local.txt'), 'utf8'), /developer-local/, 'local.txt is the admin\'s, never shipped');

  // A release tarball (no .git): the folder is taken as it is, and the installer says so.
  rmSync(join(src, '.git'), { recursive: true });
  const plain = mkdtempSync(join(tmpdir(), 'sinkhole-root-'));
  t.teardown(() => rmSync(plain, { recursive: true, force: true }));
  const p = install(src, ['--prefix', plain]);
  t.equal(p.status, 0, p.stderr);
  t.match(p.stdout, `install.sh: ${src} is not a git checkout: installing ${src}/blocklists as found (every .txt in it counts as shipped)\n`);
  t.ok(existsSync(join(plain, 'etc/sinkhole/blocklists/untracked.txt')));
});

t.test('an upgrade updates shipped lists, keeps edited ones and the admin\'s state; the command serves from the layout', async (t) => {
  const src = sourceTree(t);
  const prefix = mkdtempSync(join(tmpdir(), 'sinkhole-root-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  const first = install(src, ['--prefix', prefix]);
  t.equal(first.status, 0, first.stderr);
  const etc = join(prefix, 'etc', 'sinkhole');
  const lists = join(etc, 'blocklists');
  for (const path of ['opt/sinkhole/dist/main/cli.js', 'usr/local/bin/sinkhole', 'etc/sinkhole/sinkhole.conf', 'etc/sinkhole/blocklists/msn-messenger.txt',
    'etc/sinkhole/blocklists/available/whatsapp.txt', 'etc/sinkhole/blocklists/local.txt', 'etc/sinkhole/blocklists/local.allow.txt', 'etc/systemd/system/sinkhole.service']) {
    t.ok(existsSync(join(prefix, path)), `${path} is installed`);
  }
  t.equal(statSync(join(etc, 'sinkhole.conf')).mode & 0o777, 0o640, 'the config is 0640');
  t.match(readFileSync(join(etc, 'sinkhole.conf'), 'utf8'), new RegExp(`^blocklists ${prefix}/etc/sinkhole/blocklists$`, 'm'), '--prefix: the config names the private root');

  // The admin's changes.
  appendFileSync(join(etc, 'sinkhole.conf'), 'exempt-client 192.168.1.16\n');
  appendFileSync(join(lists, 'available/whatsapp.txt'), 'admin-edit.example\n');
  const whatsapp = readFileSync(join(lists, 'available/whatsapp.txt'), 'utf8');
  renameSync(join(lists, 'web-messengers.txt'), join(lists, 'available/web-messengers.txt'));
  renameSync(join(lists, 'available/telegram.txt'), join(lists, 'telegram.txt'));
  unlinkSync(join(lists, 'yahoo-messenger.txt'));
  appendFileSync(join(lists, 'local.txt'), 'local-addition.example\n');
  const local = readFileSync(join(lists, 'local.txt'), 'utf8');
  const conf = readFileSync(join(etc, 'sinkhole.conf'), 'utf8');

  // The next release changes lists, adds one and drops one.
  appendFileSync(join(src, 'blocklists/available/whatsapp.txt'), 'new-whatsapp-host.example\n');
  appendFileSync(join(src, 'blocklists/msn-messenger.txt'), 'new-msn-host.example\n');
  appendFileSync(join(src, 'blocklists/available/telegram.txt'), 'new-telegram-host.example\n');
  appendFileSync(join(src, 'blocklists/web-messengers.txt'), 'new-web-host.example\n');
  writeFileSync(join(src, 'blocklists/available/newchat.txt'), '# Newchat\nnewchat.example\n');
  git(src, 'rm', '-q', 'blocklists/available/viber.txt');
  git(src, 'add', 'blocklists');
  git(src, 'commit', '-q', '-m', 'release 0.2.0');

  const second = install(src, ['--prefix', prefix]);
  t.equal(second.status, 0, second.stderr);
  t.equal(readFileSync(join(etc, 'sinkhole.conf'), 'utf8'), conf, 'the edited config is kept');
  t.ok(existsSync(join(etc, 'sinkhole.conf.dist')), 'the shipped config goes beside it as .dist');
  t.equal(readFileSync(join(lists, 'available/whatsapp.txt'), 'utf8'), whatsapp, 'the edited shipped list is kept');
  t.equal(readFileSync(join(lists, 'available/whatsapp.txt.new'), 'utf8'), readFileSync(join(src, 'blocklists/available/whatsapp.txt'), 'utf8'), 'the new one is beside it');
  t.equal(second.stdout.split('\n').filter((l) => l.includes('whatsapp')).length, 1, 'one line tells the admin');
  t.match(second.stdout, `install.sh: kept your edited ${lists}/available/whatsapp.txt; the new shipped version is ${lists}/available/whatsapp.txt.new: move your lines to local.txt, then mv whatsapp.txt.new whatsapp.txt\n`);
  t.match(readFileSync(join(lists, 'msn-messenger.txt'), 'utf8'), 'new-msn-host.example', 'an untouched shipped list is updated');
  t.match(readFileSync(join(lists, 'telegram.txt'), 'utf8'), 'new-telegram-host.example', 'updated where the admin enabled it');
  t.notOk(existsSync(join(lists, 'available/telegram.txt')), 'and stays enabled');
  t.match(readFileSync(join(lists, 'available/web-messengers.txt'), 'utf8'), 'new-web-host.example', 'a disabled bundle is updated');
  t.notOk(existsSync(join(lists, 'web-messengers.txt')), 'and stays disabled');
  t.notOk(existsSync(join(lists, 'yahoo-messenger.txt')) || existsSync(join(lists, 'available/yahoo-messenger.txt')), 'a removed list is not brought back');
  t.ok(existsSync(join(lists, 'available/newchat.txt')), 'a new bundle arrives where git has it');
  t.notOk(existsSync(join(lists, 'available/viber.txt')), 'a list no longer shipped goes, as it was untouched');
  t.equal(readFileSync(join(lists, 'local.txt'), 'utf8'), local, 'local.txt is never touched');

  // A third run with nothing new: quiet about what is settled, the .new stays for the admin.
  const third = install(src, ['--prefix', prefix]);
  t.equal(third.status, 0, third.stderr);
  t.notMatch(third.stdout, /updated|installed blocklist/);
  t.ok(existsSync(join(lists, 'available/whatsapp.txt.new')));

  // The installed command serves from that layout, with the config's own paths.
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.42' }] }));
  t.teardown(() => upstream.close());
  const port = await freePort();
  writeFileSync(join(etc, 'sinkhole.conf'), conf.replace(/^listen .*$/mg, '').replace(/^admin .*$/m, `admin 127.0.0.1:${await freeTcpPort()}`)
    + `listen 127.0.0.1:${port}\nupstream ${upstream.address}\n`);
  const command = join(prefix, 'usr/local/bin/sinkhole');
  const server = spawn(command, ['serve', '--config', join(etc, 'sinkhole.conf')], { stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));
  const ready = spawnSync(command, ['wait-ready', '--config', join(etc, 'sinkhole.conf'), '--timeout', '20'], { encoding: 'utf8' });
  t.equal(ready.status, 0, `wait-ready returns once the server answers ${ready.stderr}`);
  t.equal((await ask(port, 'gateway.messenger.hotmail.com', T.A)).answers[0]?.text, '127.0.0.1', 'blocked from the installed lists');
  t.equal((await ask(port, 'new-msn-host.example', T.A)).answers[0]?.text, '127.0.0.1', 'including the update');
  t.equal((await ask(port, 'local-addition.example', T.A)).answers[0]?.text, '127.0.0.1', 'and the admin\'s local.txt');
  t.equal((await ask(port, 'meebo.com', T.A)).answers[0]?.text, '192.0.2.42', 'the disabled bundle does not block');
  const stats = spawnSync(command, ['stats'], { encoding: 'utf8', env: { ...process.env, SINKHOLE_CONFIG: undefined } });
  t.equal(stats.status, 0, `"sinkhole stats" works with the shipped admin line and the installed config ${stats.stderr}`);
  server.kill('SIGTERM');
  const notReady = spawnSync(command, ['wait-ready', '--listen', `127.0.0.1:${await freePort()}`, '--timeout', '0.5'], { encoding: 'utf8' });
  t.not(notReady.status, 0, 'wait-ready fails when nothing answers');

  const uninstall = spawnSync('bash', [join(ROOT, 'systemd', 'uninstall.sh'), '--prefix', prefix], { encoding: 'utf8' });
  t.equal(uninstall.status, 0, uninstall.stderr);
  t.same(readdirSync(join(prefix, 'opt')), [], 'the app is gone');
  t.notOk(existsSync(join(prefix, 'usr/local/bin/sinkhole')) || existsSync(join(prefix, 'usr/local/lib/sysusers.d/sinkhole.conf')));
  t.notOk(existsSync(join(prefix, 'etc/systemd/system/sinkhole.service')));
  t.ok(existsSync(join(etc, 'sinkhole.conf')) && existsSync(join(lists, 'local.txt')), 'the config and lists are kept');
  const purge = spawnSync('bash', [join(ROOT, 'systemd', 'uninstall.sh'), '--prefix', prefix, '--purge'], { encoding: 'utf8' });
  t.equal(purge.status, 0, purge.stderr);
  t.notOk(existsSync(etc), '--purge removes /etc/sinkhole');
});

t.test('an upgrade that does not answer is rolled back to the previous version, which runs again', async (t) => {
  // No systemd runs as PID 1 here, so systemctl is replaced by a small supervisor that runs
  // the installed unit's ExecStart line; the rest (wait-ready, the swap back) is install.sh's own.
  const src = sourceTree(t);
  const prefix = mkdtempSync(join(tmpdir(), 'sinkhole-root-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  const supervisor = join(prefix, 'systemctl');
  writeFileSync(supervisor, `#!/bin/sh
case "$1" in
  daemon-reload|enable) exit 0 ;;
  restart)
    [ -f "${prefix}/pid" ] && kill "$(cat "${prefix}/pid")" 2>/dev/null && sleep 0.3
    cmd=$(sed -n 's/^ExecStart=//p' "${prefix}/etc/systemd/system/sinkhole.service")
    sh -c "exec $cmd" >>"${prefix}/service.log" 2>&1 </dev/null &
    echo $! > "${prefix}/pid"
    exit 0 ;;
esac
exit 1
`, { mode: 0o755 });
  t.teardown(() => {
    const pid = existsSync(join(prefix, 'pid')) ? Number(readFileSync(join(prefix, 'pid'), 'utf8')) : 0;
    if (pid > 0) try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  });
  const env = { SINKHOLE_SYSTEMCTL: supervisor };
  t.equal(install(src, ['--prefix', prefix, '--no-start']).status, 0);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.42' }] }));
  t.teardown(() => upstream.close());
  const port = await freePort();
  const conf = join(prefix, 'etc/sinkhole/sinkhole.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^listen .*$/mg, '').replace(/^admin .*$/m, '') + `listen 127.0.0.1:${port}\nupstream ${upstream.address}\n`);
  const good = install(src, ['--prefix', prefix, '--start', '--ready-timeout', '20'], env);
  t.equal(good.status, 0, good.stderr);
  t.match(good.stdout, /sinkhole is running/);
  t.equal((await ask(port, 'gateway.messenger.hotmail.com', T.A)).answers[0]?.text, '127.0.0.1', 'the first version serves');

  // A broken release: its server exits at once; it also ships a new list.
  writeFileSync(join(src, 'dist/main/cli.js'), 'process.exit(3);\n');
  writeFileSync(join(src, 'package.json'), readFileSync(join(src, 'package.json'), 'utf8').replace(/"version": "[^"]+"/, '"version": "9.9.9-broken"'));
  writeFileSync(join(src, 'blocklists/broken-release.txt'), 'broken-release.example\n');
  git(src, 'add', 'blocklists', 'package.json');
  git(src, 'commit', '-q', '-m', 'release 9.9.9-broken');
  const bad = install(src, ['--prefix', prefix, '--start', '--ready-timeout', '3'], env);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /install\.sh: the new version \(9\.9\.9-broken\) did not answer within 3 s, so the previous one \(0\.1\.0\) is back and running; the failed one is in .*\/opt\/sinkhole\.failed; see why: journalctl -u sinkhole -n 50\n$/);
  t.notMatch(readFileSync(join(prefix, 'opt/sinkhole/dist/main/cli.js'), 'utf8'), /process\.exit\(3\)/, 'the previous app is back');
  t.match(readFileSync(join(prefix, 'opt/sinkhole.failed/dist/main/cli.js'), 'utf8'), /process\.exit\(3\)/, 'the failed one is kept aside');
  t.notOk(existsSync(join(prefix, 'etc/sinkhole/blocklists/broken-release.txt')), 'the lists are back as they were');
  t.notOk(existsSync(join(prefix, 'opt/sinkhole.prev')));
  t.equal((await ask(port, 'gateway.messenger.hotmail.com', T.A)).answers[0]?.text, '127.0.0.1', 'the previous version serves again');
});

t.test('a node inside a home folder is refused by the installer and by the command', async (t) => {
  if (missing(t, 'unshare')) return;
  const src = sourceTree(t);
  const prefix = mkdtempSync(join(tmpdir(), 'sinkhole-root-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  t.equal(install(src, ['--prefix', prefix]).status, 0);
  const realNode = spawnSync('readlink', ['-f', process.execPath], { encoding: 'utf8' }).stdout.trim();
  // In a private mount namespace: /home/admin/.nvm/node is this node, and /usr/local/bin/node
  // (searched first) links to it, as `ln -s $(which node) /usr/local/bin` does under nvm.
  const inHome = (command: string) => spawnSync('unshare', ['-rm', 'sh', '-ec', `
    mount -t tmpfs none /home; mkdir -p /home/admin/.nvm; touch /home/admin/.nvm/node
    mount --bind "$1" /home/admin/.nvm/node
    mount -t tmpfs none /usr/local/bin; ln -s /home/admin/.nvm/node /usr/local/bin/node
    ${command}`, 'sh', realNode], { encoding: 'utf8', timeout: 60000 });
  const installer = inHome(`exec bash ${join(src, 'systemd/install.sh')} --prefix ${join(prefix, 'second')}`);
  t.equal(installer.status, 1, installer.stderr);
  t.equal(installer.stderr, 'install.sh: /usr/local/bin/node is /home/admin/.nvm/node, inside a home folder the service cannot read (ProtectHome=yes); install Node.js system-wide: sudo install -m 755 /home/admin/.nvm/node /usr/local/bin/node\n');
  const command = inHome(`exec ${join(prefix, 'opt/sinkhole/bin/sinkhole')} list`);
  t.equal(command.status, 1);
  t.match(command.stderr, /^sinkhole: \/usr\/local\/bin\/node is \/home\/admin\/\.nvm\/node, inside a home folder the service cannot read \(ProtectHome=yes\)/);
  t.ok(lstatSync(join(prefix, 'opt/sinkhole/bin/sinkhole')).isFile());
  const outside = spawnSync(join(prefix, 'opt/sinkhole/bin/sinkhole'), ['list', '--blocklists', join(prefix, 'etc/sinkhole/blocklists')], { encoding: 'utf8' });
  t.equal(outside.status, 0, `with the system's node it runs ${outside.stderr}`);
});

t.test('install.sh refuses to run as an ordinary user without --prefix', async (t) => {
  if (process.getuid?.() !== 0) {
    const r = spawnSync('bash', [join(ROOT, 'systemd', 'install.sh')], { encoding: 'utf8' });
    t.equal(r.status, 1);
    t.match(r.stderr, /run as root/);
    return;
  }
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/env', '-i', 'PATH=/usr/bin:/bin',
    'bash', join(ROOT, 'systemd', 'install.sh')], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /install\.sh: run as root \(sudo .*install\.sh\), or use --prefix DIR/);
});
