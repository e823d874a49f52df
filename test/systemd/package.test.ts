// `npm run package` (systemd/package-deb.sh): a .deb built offline with dpkg-deb. Checked with
// dpkg-deb --info/--contents, then installed, upgraded, removed and purged with
// `dpkg --root` into a temporary root (never into this machine), its maintainer scripts run
// with DPKG_ROOT (--force-script-chrootless); the installed unit passes systemd-analyze verify.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { git, ROOT, sourceTree } from '../helpers/source-tree.js';

// Each install copies the app (a few seconds, far more on a busy machine): more than the
// suite's 120 s per file.
t.setTimeout(600_000);
const inCi = process.env.CI === 'true';
const contents0 = (deb: string) => spawnSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' }).stdout;
const run = (command: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(command, args, { encoding: 'utf8', timeout: 120000, env: { ...process.env, ...env } });

t.test('a .deb that installs, upgrades keeping the admin\'s lists, and removes cleanly', async (t) => {
  for (const tool of ['dpkg-deb', 'dpkg', 'systemd-sysusers']) {
    if (run('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      t.notOk(inCi, `${tool} is installed in CI`);
      return;
    }
  }
  t.equal(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.package, 'bash systemd/package-deb.sh', 'npm run package builds it');
  const src = sourceTree(t);
  const out = mkdtempSync(join(tmpdir(), 'sinkhole-deb-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const build = run('bash', [join(src, 'systemd/package-deb.sh'), '--out', out]);
  t.equal(build.status, 0, build.stderr);
  // Architecture all, unless the optional native addon (batched UDP) is built: then this machine's.
  const native = run('sh', ['-c', `ls ${join(ROOT, 'src/net/batch-udp/build/Release')}/*.node`]).status === 0;
  const arch = native ? run('dpkg', ['--print-architecture']).stdout.trim() : 'all';
  const deb = join(out, `sinkhole_0.1.0_${arch}.deb`);
  t.equal(build.stdout, `package-deb.sh: built ${deb}\n`);

  const info = run('dpkg-deb', ['--info', deb]).stdout;
  t.match(info, /^ Package: sinkhole$/m);
  t.match(info, /^ Version: 0\.1\.0$/m);
  t.match(info, new RegExp(`^ Architecture: ${arch}$`, 'm'));
  if (native) t.match(contents0(deb), / \.\/opt\/sinkhole\/node_modules\/sinkhole-batch-udp\/build\/Release\/batch_udp\.node\n/, 'the built addon, and no C sources');
  t.match(run('dpkg-deb', ['--field', deb, 'Recommends']).stdout, 'nodejs (>= 20)');
  t.equal(run('dpkg-deb', ['--ctrl-tarfile', deb]).status, 0);
  const contents = run('dpkg-deb', ['--contents', deb]).stdout;
  t.same(contents.trim().split('\n').filter((line) => !/^\S+ root\/root /.test(line)), [], 'every file owned by root');
  t.same(contents.trim().split('\n').filter((line) => /^[^l]\S{4}w|^[^l]\S{7}w/.test(line)), [], 'none writable by group or others');
  t.match(contents, / \.\/usr\/bin\/sinkhole -> \/opt\/sinkhole\/bin\/sinkhole$/m);
  t.match(contents, /^-rw-r----- root\/root .* \.\/etc\/sinkhole\/sinkhole\.conf$/m, 'the config, 0640');
  for (const path of ['./lib/systemd/system/sinkhole.service', './usr/lib/sysusers.d/sinkhole.conf', './opt/sinkhole/dist/main/cli.js',
    './opt/sinkhole/node_modules/pino/package.json', './opt/sinkhole/blocklists/msn-messenger.txt', './opt/sinkhole/lib/sync-lists.sh']) {
    t.match(contents, ` ${path}\n`, path);
  }
  if (existsSync(join(ROOT, 'docs/man/sinkhole.8'))) t.match(contents, / \.\/usr\/share\/man\/man8\/sinkhole\.8\n/, 'the manual pages');
  t.notMatch(contents, /\.\/usr\/local|\.\/etc\/sinkhole\/blocklists|\.\/opt\/sinkhole\/(dist\/)?bench|node_modules\/(tap|typescript)\/|\.c\n|\.o\n/, 'nothing in /usr/local, no /etc lists, no benchmark, no dev packages, no C sources or objects');
  const control = mkdtempSync(join(tmpdir(), 'sinkhole-deb-control-'));
  t.teardown(() => rmSync(control, { recursive: true, force: true }));
  run('dpkg-deb', ['--control', deb, control]);
  t.equal(readFileSync(join(control, 'conffiles'), 'utf8'), '/etc/sinkhole/sinkhole.conf\n', 'the config is a conffile');

  // Install into a temporary root.
  const root = mkdtempSync(join(tmpdir(), 'sinkhole-dpkg-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const dir of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'etc']) mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  const dpkg = (...args: string[]) => run('dpkg', [`--root=${root}`, '--force-script-chrootless', '--log=/dev/null', ...args]);
  const first = dpkg('-i', deb);
  t.equal(first.status, 0, first.stderr);
  const lists = join(root, 'etc/sinkhole/blocklists');
  t.ok(existsSync(join(lists, 'msn-messenger.txt')) && existsSync(join(lists, 'available/whatsapp.txt')) && existsSync(join(lists, 'local.txt')), 'the postinst laid out the lists');
  const gid = /^sinkhole:x:(\d+):/m.exec(readFileSync(join(root, 'etc/group'), 'utf8'))?.[1];
  t.ok(gid, 'the sinkhole group exists in the root');
  t.equal(statSync(join(root, 'etc/sinkhole/sinkhole.conf')).gid, Number(gid), 'the config belongs to group sinkhole');
  t.equal(statSync(join(root, 'etc/sinkhole/sinkhole.conf')).mode & 0o777, 0o640);
  t.equal(readlinkSync(join(root, 'usr/bin/sinkhole')), '/opt/sinkhole/bin/sinkhole');
  t.match(run('dpkg', [`--root=${root}`, '-s', 'sinkhole']).stdout, /^Status: install ok installed$/m);

  // The installed command and unit, with the root's /opt mounted at /opt.
  if (run('sh', ['-c', 'command -v unshare && command -v systemd-analyze']).status === 0) {
    // man (for the unit's Documentation=) looks in the root's /usr/share/man too.
    const inRoot = (command: string) => run('unshare', ['-rm', 'sh', '-ec', `mount -t tmpfs none /opt; mkdir /opt/sinkhole; mount --bind "$1/opt/sinkhole" /opt/sinkhole; ${command}`, 'sh', root],
      { MANPATH: `${join(root, 'usr/share/man')}:` });
    const list = inRoot(`/opt/sinkhole/bin/sinkhole list --blocklists ${lists}`);
    t.equal(list.status, 0, list.stderr);
    t.match(list.stdout, /^msn-messenger\s+enabled/m);
    const verify = inRoot(`systemd-analyze verify ${join(root, 'lib/systemd/system/sinkhole.service')}`);
    t.equal(verify.status, 0, verify.stderr);
    t.equal(verify.stderr, '', 'the installed unit passes systemd-analyze verify');
  } else {
    t.notOk(inCi, 'unshare and systemd-analyze are installed in CI');
  }

  // The admin's changes, then version 0.2.0.
  appendFileSync(join(lists, 'available/whatsapp.txt'), 'admin-edit.example\n');
  renameSync(join(lists, 'web-messengers.txt'), join(lists, 'available/web-messengers.txt'));
  appendFileSync(join(lists, 'local.txt'), 'mine.example\n');
  appendFileSync(join(root, 'etc/sinkhole/sinkhole.conf'), 'exempt-client 192.168.1.16\n');
  appendFileSync(join(src, 'blocklists/available/whatsapp.txt'), 'new-whatsapp-host.example\n');
  appendFileSync(join(src, 'blocklists/msn-messenger.txt'), 'new-msn-host.example\n');
  appendFileSync(join(src, 'blocklists/web-messengers.txt'), 'new-web-host.example\n');
  writeFileSync(join(src, 'package.json'), readFileSync(join(src, 'package.json'), 'utf8').replace(/"version": "[^"]+"/, '"version": "0.2.0"'));
  git(src, 'commit', '-q', '-am', 'release 0.2.0');
  t.equal(run('bash', [join(src, 'systemd/package-deb.sh'), '--out', out]).status, 0);
  const upgrade = dpkg('--force-confold', '-i', join(out, `sinkhole_0.2.0_${arch}.deb`));
  t.equal(upgrade.status, 0, upgrade.stderr);
  t.match(upgrade.stdout, `sinkhole: kept your edited ${lists}/available/whatsapp.txt; the new shipped version is ${lists}/available/whatsapp.txt.new`);
  t.match(readFileSync(join(lists, 'available/whatsapp.txt.new'), 'utf8'), 'new-whatsapp-host.example');
  t.match(readFileSync(join(lists, 'msn-messenger.txt'), 'utf8'), 'new-msn-host.example', 'an untouched list is updated');
  t.match(readFileSync(join(lists, 'available/web-messengers.txt'), 'utf8'), 'new-web-host.example', 'a disabled one too');
  t.notOk(existsSync(join(lists, 'web-messengers.txt')), 'and it stays disabled');
  t.match(readFileSync(join(lists, 'local.txt'), 'utf8'), 'mine.example');
  t.match(readFileSync(join(root, 'etc/sinkhole/sinkhole.conf'), 'utf8'), 'exempt-client 192.168.1.16', 'the edited config is kept (a conffile)');
  t.equal(statSync(join(root, 'etc/sinkhole/sinkhole.conf')).gid, Number(gid));

  const remove = dpkg('--remove', 'sinkhole');
  t.equal(remove.status, 0, remove.stderr);
  t.notOk(existsSync(join(root, 'opt/sinkhole')) || existsSync(join(root, 'usr/bin/sinkhole')) || existsSync(join(root, 'lib/systemd/system/sinkhole.service')), 'remove takes the app away');
  t.ok(existsSync(join(root, 'etc/sinkhole/sinkhole.conf')) && existsSync(join(lists, 'local.txt')), 'and keeps the config and lists');
  const purge = dpkg('--purge', 'sinkhole');
  t.equal(purge.status, 0, purge.stderr);
  t.notOk(existsSync(join(root, 'etc/sinkhole')) || existsSync(join(root, 'var/lib/sinkhole')), 'purge takes the rest');
});
