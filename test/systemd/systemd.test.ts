// Deployment: the unit passes systemd-analyze verify; install.sh lays out a temporary root,
// keeps the admin's edits on a second run, and the installed command serves from that
// layout; uninstall.sh removes the app and keeps the config.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { spawn } from 'node:child_process';

const ROOT = join(import.meta.dirname, '..', '..');
const inCi = process.env.CI === 'true';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

t.test('the unit passes systemd-analyze verify', async (t) => {
  if (!have('systemd-analyze')) {
    t.notOk(inCi, 'systemd-analyze is installed in CI');
    t.comment('skipped: systemd-analyze is not installed here');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // verify needs the programs the unit runs to exist: point them at a stand-in.
  writeFileSync(join(dir, 'sinkhole'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const unit = readFileSync(join(ROOT, 'systemd', 'sinkhole.service'), 'utf8').replaceAll('/usr/local/bin/sinkhole', join(dir, 'sinkhole'));
  writeFileSync(join(dir, 'sinkhole.service'), unit);
  const ok = spawnSync('systemd-analyze', ['verify', join(dir, 'sinkhole.service')], { encoding: 'utf8' });
  t.equal(ok.status, 0);
  t.equal(ok.stderr.trim(), '', 'no warnings');
  writeFileSync(join(dir, 'sinkhole.service'), unit.replace('ProtectHome=yes', 'ProtectHome=sometimes'));
  const bad = spawnSync('systemd-analyze', ['verify', join(dir, 'sinkhole.service')], { encoding: 'utf8' });
  t.match(bad.stderr, /ProtectHome|protect home/i, 'a broken setting would be reported (the check can fail)');
  for (const setting of ['DynamicUser=yes', 'AmbientCapabilities=CAP_NET_BIND_SERVICE', 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateDevices=yes', 'Restart=on-failure',
    'ExecReload=/bin/kill -HUP $MAINPID', 'RestrictAddressFamilies=AF_INET AF_INET6']) {
    t.match(unit, setting, setting);
  }
  t.notMatch(unit, /PrivateUsers=yes/, 'not PrivateUsers (it would take CAP_NET_BIND_SERVICE away)');
});

t.test('install.sh into a temporary root; a second run keeps what the admin changed; uninstall', async (t) => {
  const prefix = mkdtempSync(join(tmpdir(), 'sinkhole-root-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  const install = () => spawnSync('bash', [join(ROOT, 'systemd', 'install.sh'), '--prefix', prefix], { encoding: 'utf8', timeout: 120000 });
  const first = install();
  t.equal(first.status, 0, first.stderr);
  const etc = join(prefix, 'etc', 'sinkhole');
  for (const path of ['opt/sinkhole/dist/main/cli.js', 'opt/sinkhole/node_modules/lru-cache', 'opt/sinkhole/node_modules/pino', 'usr/local/bin/sinkhole',
    'etc/sinkhole/sinkhole.conf', 'etc/sinkhole/blocklists/msn-messenger.txt', 'etc/sinkhole/blocklists/web-messengers.txt',
    'etc/sinkhole/blocklists/available/whatsapp.txt', 'etc/systemd/system/sinkhole.service']) {
    t.ok(existsSync(join(prefix, path)), `${path} is installed`);
  }
  t.notOk(existsSync(join(prefix, 'opt/sinkhole/node_modules/tap')), 'development packages are not installed');
  t.ok(statSync(join(prefix, 'usr/local/bin/sinkhole')).mode & 0o111, 'the command is executable');
  t.match(readFileSync(join(etc, 'sinkhole.conf'), 'utf8'), /^listen 0\.0\.0\.0:53$/m, 'the production config listens on every address, port 53');

  // The admin's changes.
  appendFileSync(join(etc, 'sinkhole.conf'), 'exempt-client 192.168.1.16\n');
  appendFileSync(join(etc, 'blocklists', 'msn-messenger.txt'), 'local-addition.example\n');
  renameSync(join(etc, 'blocklists', 'web-messengers.txt'), join(etc, 'blocklists', 'available', 'web-messengers.txt'));
  unlinkSync(join(etc, 'blocklists', 'yahoo-messenger.txt'));
  const conf = readFileSync(join(etc, 'sinkhole.conf'), 'utf8');
  const msn = readFileSync(join(etc, 'blocklists', 'msn-messenger.txt'), 'utf8');

  const second = install();
  t.equal(second.status, 0, second.stderr);
  t.equal(readFileSync(join(etc, 'sinkhole.conf'), 'utf8'), conf, 'the edited config is kept');
  t.ok(existsSync(join(etc, 'sinkhole.conf.dist')), 'the shipped config goes beside it as .dist');
  t.equal(readFileSync(join(etc, 'blocklists', 'msn-messenger.txt'), 'utf8'), msn, 'the edited blocklist is kept');
  t.notOk(existsSync(join(etc, 'blocklists', 'web-messengers.txt')), 'a disabled bundle stays disabled');
  t.ok(existsSync(join(etc, 'blocklists', 'available', 'web-messengers.txt')));
  t.notOk(existsSync(join(etc, 'blocklists', 'yahoo-messenger.txt')), 'a removed list is not brought back');
  t.match(second.stdout, /kept your edited .*msn-messenger\.txt/);

  // The installed command serves from that layout.
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.42' }] }));
  t.teardown(() => upstream.close());
  const port = await freePort();
  const command = join(prefix, 'usr/local/bin/sinkhole');
  const server = spawn(command, ['serve', '--config', join(etc, 'sinkhole.conf'), '--listen', `127.0.0.1:${port}`,
    '--upstream', upstream.address, '--blocklists', join(etc, 'blocklists')], { stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));
  const ready = await new Promise<number | null>((resolve) => {
    const child = spawn(command, ['wait-ready', '--listen', `127.0.0.1:${port}`, '--timeout', '20'], { stdio: 'ignore' });
    child.on('exit', resolve);
  });
  t.equal(ready, 0, 'wait-ready returns once the server answers');
  t.equal((await ask(port, 'gateway.messenger.hotmail.com', T.A)).answers[0]?.text, '127.0.0.1', 'blocked from the installed lists');
  t.equal((await ask(port, 'local-addition.example', T.A)).answers[0]?.text, '127.0.0.1', 'including the admin\'s line');
  t.equal((await ask(port, 'meebo.com', T.A)).answers[0]?.text, '192.0.2.42', 'the disabled bundle does not block');
  server.kill('SIGTERM');
  const notReady = spawnSync(command, ['wait-ready', '--listen', `127.0.0.1:${await freePort()}`, '--timeout', '0.5'], { encoding: 'utf8' });
  t.not(notReady.status, 0, 'wait-ready fails when nothing answers');
  t.match(notReady.stderr, /no answer from 127\.0\.0\.1:\d+ within 0\.5 s/);

  const uninstall = spawnSync('bash', [join(ROOT, 'systemd', 'uninstall.sh'), '--prefix', prefix], { encoding: 'utf8' });
  t.equal(uninstall.status, 0, uninstall.stderr);
  t.notOk(existsSync(join(prefix, 'opt/sinkhole')), 'the app is gone');
  t.notOk(existsSync(join(prefix, 'usr/local/bin/sinkhole')));
  t.notOk(existsSync(join(prefix, 'etc/systemd/system/sinkhole.service')));
  t.ok(existsSync(join(etc, 'sinkhole.conf')), 'the config is kept');
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
