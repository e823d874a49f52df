// Deployment: install.sh and uninstall.sh answer --help; DESTDIR stages files that name the
// final paths, and the staged unit passes systemd-analyze verify where it will live; only
// git's view of blocklists/ is installed. Upgrades, rollback and node: upgrade.test.ts.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
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
  t.match(conf, /^state-dir \/var\/lib\/sinkhole$/m, 'history, pauses and lists in the unit\'s StateDirectory');
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
