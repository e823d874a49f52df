// `sinkhole check`, `list`, `enable`, `disable` as an admin runs them: real processes on a
// real blocklist folder; exit codes usable from scripts (check: 0 allowed, 1 blocked, 2 error).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20000 });

function folder(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-cmd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'available'));
  writeFileSync(join(dir, 'msn-messenger.txt'), '# MSN / Windows Live Messenger\nmessenger.hotmail.com\ngateway.messenger.hotmail.com\n@@||ok.messenger.hotmail.com^\n');
  writeFileSync(join(dir, 'aim-icq.txt'), '# AIM and ICQ\nlogin.oscar.aol.com\nip:64.12.24.0/22\n');
  writeFileSync(join(dir, 'available', 'whatsapp.txt'), '# WhatsApp (disabled by default)\nwhatsapp.net\nwhatsapp.com\n');
  return dir;
}

t.test('check: verdict, the deciding rule and every rule involved; exit 0 / 1 / 2', async (t) => {
  const dir = folder(t);
  const blocked = run('check', 'x.gateway.messenger.hotmail.com', '--blocklists', dir);
  t.equal(blocked.status, 1, 'blocked: exit 1');
  t.equal(blocked.stdout, [
    'x.gateway.messenger.hotmail.com A: BLOCKED -> 127.0.0.1',
    '  why: block rule gateway.messenger.hotmail.com is the most specific rule',
    `  decided by: block gateway.messenger.hotmail.com (${dir}/msn-messenger.txt:3, bundle msn-messenger)`,
    '  rules covering this name:',
    `    block gateway.messenger.hotmail.com  ${dir}/msn-messenger.txt:3 (msn-messenger)`,
    `    block messenger.hotmail.com  ${dir}/msn-messenger.txt:2 (msn-messenger)`,
    '',
  ].join('\n'));
  const aaaa = run('check', 'messenger.hotmail.com', '--type', 'AAAA', '--blocklists', dir);
  t.match(aaaa.stdout, /AAAA: BLOCKED -> ::1/);
  t.match(run('check', 'messenger.hotmail.com', '--type', 'MX', '--blocklists', dir).stdout, /MX: BLOCKED -> NODATA \(SOA\)/);

  const allowed = run('check', 'ok.messenger.hotmail.com', '--blocklists', dir);
  t.equal(allowed.status, 0, 'allowed by an exception: exit 0');
  t.match(allowed.stdout, /ALLOWED -> forwarded upstream\n  why: allow rule ok\.messenger\.hotmail\.com is the most specific rule/);
  t.match(allowed.stdout, `block messenger.hotmail.com  ${dir}/msn-messenger.txt:2`, 'the block rule it beats is listed too');
  const hotmail = run('check', 'hotmail.com', '--blocklists', dir);
  t.equal(hotmail.status, 0);
  t.match(hotmail.stdout, /no rule covers this name/);

  const json = JSON.parse(run('check', 'messenger.hotmail.com', '--json', '--blocklists', dir).stdout) as Record<string, unknown>;
  t.match(json, { verdict: 'blocked', answer: '127.0.0.1', decidedBy: { line: 2, bundle: 'msn-messenger', allow: false } }, '--json for scripts');

  const exempt = run('check', 'messenger.hotmail.com', '--client', '192.168.1.16', '--exempt-client', '192.168.1.16', '--blocklists', dir);
  t.equal(exempt.status, 0, 'an exempt client');
  t.match(exempt.stdout, /from 192\.168\.1\.16: EXEMPT/);
  const stranger = run('check', 'www.example.org', '--client', '203.0.113.9', '--blocklists', dir);
  t.equal(stranger.status, 1, 'a client outside allow-net');
  t.match(stranger.stdout, /REFUSED/);
  t.equal(run('check', 'use-application-dns.net', '--blocklists', dir).status, 1, 'the DoH canary');

  for (const [label, args, pattern] of [
    ['bad name', ['check', 'bad..name', '--blocklists', dir], /not a valid name/],
    ['bad type', ['check', 'x.example', '--type', 'BOGUS', '--blocklists', dir], /"BOGUS" is not a query type/],
    ['no name', ['check', '--blocklists', dir], /check takes one name/],
    ['no folder', ['check', 'x.example', '--blocklists', join(dir, 'nope')], /cannot read blocklist folder/],
  ] as const) {
    const r = run(...args);
    t.equal(r.status, 2, `${label}: exit 2`);
    t.match(r.stderr, pattern);
  }
});

t.test('list, enable, disable move bundles between the folder and available/', async (t) => {
  const dir = folder(t);
  const list = run('list', '--blocklists', dir);
  t.equal(list.status, 0);
  t.match(list.stdout, /aim-icq\s+enabled\s+2\s+AIM and ICQ/);
  t.match(list.stdout, /msn-messenger\s+enabled\s+3\s+MSN \/ Windows Live Messenger/);
  t.match(list.stdout, /whatsapp\s+disabled\s+2\s+WhatsApp \(disabled by default\)/);
  t.equal(run('check', 'web.whatsapp.com', '--blocklists', dir).status, 0, 'a disabled bundle blocks nothing');

  const enable = run('enable', 'whatsapp', '--blocklists', dir);
  t.equal(enable.status, 0);
  t.match(enable.stdout, /enabled whatsapp/);
  t.ok(existsSync(join(dir, 'whatsapp.txt')) && !existsSync(join(dir, 'available', 'whatsapp.txt')), 'moved up');
  t.equal(run('check', 'web.whatsapp.com', '--blocklists', dir).status, 1, 'now blocked');
  t.match(run('enable', 'whatsapp', '--blocklists', dir).stdout, /already enabled/, 'enabling twice is harmless');

  const disable = run('disable', 'msn-messenger', '--blocklists', dir);
  t.equal(disable.status, 0);
  t.ok(existsSync(join(dir, 'available', 'msn-messenger.txt')), 'moved down into available/');
  t.equal(run('check', 'messenger.hotmail.com', '--blocklists', dir).status, 0, 'no longer blocked');
  t.match(run('list', '--blocklists', dir).stdout, /msn-messenger\s+disabled/);

  for (const [args, pattern] of [
    [['enable', 'telegram', '--blocklists', dir], /no bundle "telegram"/],
    [['enable', '../../etc/passwd', '--blocklists', dir], /not a bundle name/],
    [['disable', '--blocklists', dir], /disable takes one bundle name/],
  ] as const) {
    const r = run(...args);
    t.equal(r.status, 2);
    t.match(r.stderr, pattern);
  }
});
