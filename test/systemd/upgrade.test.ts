// Upgrades with install.sh: shipped lists updated, edited ones kept (NAME.txt.new beside
// them), the enabled/disabled state and local.txt kept, the installed command serving from the
// layout; a new version that does not answer is rolled back; a node inside a home folder is
// refused. (--help, DESTDIR, verify and git's view: systemd.test.ts.)
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { appendFileSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { git, ROOT, sourceTree } from '../helpers/source-tree.js';

// Each install copies the app (a few seconds, far more on a busy machine): more than the
// suite's 120 s per file.
t.setTimeout(600_000);
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
  t.ok(statSync(join(prefix, 'var/lib/sinkhole')).isDirectory(), 'the state folder the config names');
  t.match(readFileSync(join(etc, 'sinkhole.conf'), 'utf8'), new RegExp(`^state-dir ${prefix}/var/lib/sinkhole$`, 'm'));
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

