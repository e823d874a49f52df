// Groups, schedules, pause and subscriptions in the running server, over real sockets:
// clients at several 127.0.0.x source addresses (Linux routes all of 127/8 to lo) get their
// group's verdicts; a window covering this minute blocks and one that does not lets
// through; a window that starts while the server runs takes effect by itself; pause and
// resume through the admin API, also across a restart; a list-url fetched from an HTTP
// server on 127.0.0.1, in force while the list site is down.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ask, udpExchange } from '../../helpers/client.js';
import { buildQuery, decode, T } from '../../helpers/dns.js';
import { freePort, startSinkhole, type TestServer } from '../../helpers/server.js';
import { startUpstream, type Handler } from '../../helpers/upstream.js';
import { ConfigError } from '../../../src/config/config.js';
import { policySettingsFrom } from '../../../src/stages/policy/group-setup.js';

const CLI = join(import.meta.dirname, '..', '..', '..', 'dist', 'main', 'cli.js');
const real: Handler = (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] });

const STAFF = '127.0.1.5';
const ADMIN = '127.0.1.16';
const GUEST = '127.0.2.9';
const OTHER = '127.0.0.1';

const hhmm = (ms: number) => {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
};

const temporary: string[] = [];
t.teardown(() => {
  for (const d of temporary) rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(d);
  return d;
};

/** A blocklist folder: three enabled bundles, two waiting in available/. */
function folder(): string {
  const dir = tempDir('sinkhole-groups-');
  mkdirSync(join(dir, 'available'));
  writeFileSync(join(dir, 'whatsapp.txt'), '# WhatsApp\nwhatsapp.example\n');
  writeFileSync(join(dir, 'telegram.txt'), '# Telegram\ntelegram.example\n');
  writeFileSync(join(dir, 'msn.txt'), '# MSN\nmsn.example\n');
  writeFileSync(join(dir, 'available', 'teams.txt'), '# Teams\nteams.example\n');
  writeFileSync(join(dir, 'available', 'signal.txt'), '# Signal\nsignal.example\n');
  return dir;
}

/** Config lines as a config file would give them (name, value, file:line). */
function settings(text: string, stateDir: string | null = null) {
  const lines = text.trim().split('\n').map((line, i) => {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim())!;
    return { name: m[1]!, value: m[2]!, where: `office.conf:${i + 1}` };
  });
  return policySettingsFrom(lines, stateDir);
}

async function start(t: Test, text: string, o: { stateDir?: string; admin?: boolean; dir?: string; port?: number; args?: string[] } = {}): Promise<TestServer & { admin: string; stop(): Promise<void> }> {
  const upstream = await startUpstream(real);
  const adminPort = await freePort();
  const s = await startSinkhole({
    upstream: upstream.address, dir: o.dir ?? folder(), policy: settings(text, o.stateDir ?? null), port: o.port,
    args: [...(o.admin ? ['--admin', `127.0.0.1:${adminPort}`] : []), ...(o.args ?? [])],
  });
  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= s.server.stop());
  t.teardown(async () => {
    await stop();
    await upstream.close();
  });
  return Object.assign(s, { admin: `http://127.0.0.1:${adminPort}`, stop });
}

const verdict = async (s: TestServer, name: string, from: string) => {
  const r = await ask(s.port, name, T.A, { from });
  return r.answers[0]?.text === '127.0.0.1' ? 'blocked' : r.answers[0]?.text === '192.0.2.7' ? 'allowed' : `odd ${JSON.stringify(r.answers)}`;
};

t.test('each group gets its own verdicts; schedules in force and not; allow during a schedule wins', async (t) => {
  const now = Date.now();
  const s = await start(t, `
group    staff   127.0.1.0/24
group    admins  127.0.1.16
group    guests  127.0.2.0/24
schedule now     daily ${hhmm(now - 60_000)}-${hhmm(now + 180_000)}
schedule later   daily ${hhmm(now + 3 * 3_600_000)}-${hhmm(now + 4 * 3_600_000)}
block    staff   whatsapp telegram
block    staff   teams during now
block    staff   signal during later
allow    staff   telegram during now
block    guests  whatsapp signal
block    admins  none
`, { admin: true });
  const table: [string, string, string, string, string][] = [
    // name               staff      admins     guests     default
    ['whatsapp.example', 'blocked', 'allowed', 'blocked', 'blocked'],
    ['telegram.example', 'allowed', 'allowed', 'allowed', 'blocked'],
    ['teams.example', 'blocked', 'allowed', 'allowed', 'allowed'],
    ['signal.example', 'allowed', 'allowed', 'blocked', 'allowed'],
    ['msn.example', 'allowed', 'allowed', 'allowed', 'blocked'],
  ];
  for (const [name, ...want] of table) {
    const got = [];
    for (const from of [STAFF, ADMIN, GUEST, OTHER]) got.push(await verdict(s, `x.${name}`, from));
    t.same(got, want, `${name}: staff, admins, guests, default`);
  }
  const r = await ask(s.port, 'whatsapp.example', T.A, { from: GUEST, edns: true });
  const ede = r.opt?.options.find((o) => o.code === 15);
  t.match(ede?.data.subarray(2).toString(), /^blocked by whatsapp\.example \(.*whatsapp\.txt:2, bundle whatsapp, group guests\)$/, 'the EDE text names the group');

  const check = async (query: string) => (await fetch(`${s.admin}/api/check?${query}`)).json() as Promise<Record<string, unknown>>;
  const c = await check(`name=teams.example&client=${STAFF}`);
  t.equal(c.verdict, 'blocked');
  t.match(c.group, { group: 'staff', matchedBy: { cidr: '127.0.1.0/24', where: 'office.conf:1' }, schedules: [{ name: 'now', inForce: true }, { name: 'later', inForce: false }] });
  t.match(c.decidedBy, { rule: 'teams.example', bundle: 'teams' });
  const later = await check(`name=signal.example&client=${STAFF}&at=${encodeURIComponent(hhmm(now + 3.5 * 3_600_000))}`);
  if (new Date(now + 3.5 * 3_600_000).getDate() === new Date(now).getDate()) {
    t.equal(later.verdict, 'blocked', 'check --at: signal blocks for staff during "later"');
  }
  const x = await check(`name=msn.example&client=${STAFF}`);
  t.equal(x.verdict, 'allowed');
  t.match(x.reason, /bundle msn does not block for group staff now/);
});

t.test('a window that starts while the server runs takes effect by itself', async (t) => {
  // The next minute boundary at least 3 s away (the server must be up and asked before it).
  let start = Math.ceil(Date.now() / 60_000) * 60_000;
  if (start - Date.now() < 3000) start += 60_000;
  const s = await start_(t, `
group    staff  127.0.1.0/24
schedule soon   daily ${hhmm(start)}-${hhmm(start + 120_000)}
block    staff  teams during soon
`);
  t.equal(await verdict(s, 'teams.example', STAFF), 'allowed', 'before the window');
  while (Date.now() < start + 1000) await new Promise((r) => setTimeout(r, 200));
  t.equal(await verdict(s, 'teams.example', STAFF), 'blocked', 'within a second of its start, with no reload');
  t.equal(await verdict(s, 'teams.example', OTHER), 'allowed', 'only for the group');
});
const start_ = start;

t.test('pause and resume through the admin API, by group and for everyone, across a restart', async (t) => {
  const stateDir = tempDir('sinkhole-state-');
  const dir = folder();
  const lines = 'group guests 127.0.2.0/24\nblock guests whatsapp\n';
  const s = await start(t, lines, { stateDir, admin: true, dir });
  const post = async (path: string) => {
    const r = await fetch(`${s.admin}${path}`, { method: 'POST' });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  t.equal(await verdict(s, 'whatsapp.example', GUEST), 'blocked');
  t.match(await post('/api/pause?group=staf'), { status: 400, body: { error: /unknown group "staf"; groups: default, guests/ } });
  t.match(await post('/api/pause?group=guests&for=2s'), { status: 200, body: { paused: 'guests', pauses: [{ group: 'guests' }] } });
  t.equal(await verdict(s, 'whatsapp.example', GUEST), 'allowed', 'guests paused');
  t.equal(await verdict(s, 'whatsapp.example', OTHER), 'blocked', 'default still blocked');
  await new Promise((r) => setTimeout(r, 2300));
  t.equal(await verdict(s, 'whatsapp.example', GUEST), 'blocked', 'back by itself when the time ran out');

  t.match(await post('/api/pause?for=10m'), { status: 200, body: { paused: 'all' } });
  t.match(await (await fetch(`${s.admin}/api/pause`)).json(), { pauses: [{ group: 'all', until: /^20\d\d-/ }], lists: [] }, 'GET /api/pause lists the pauses');
  t.equal(await verdict(s, 'whatsapp.example', OTHER), 'allowed', 'everyone paused');
  const port = s.port;
  await s.stop();
  const again = await start(t, lines, { stateDir, admin: true, dir, port });
  t.equal(await verdict(again, 'whatsapp.example', GUEST), 'allowed', 'still paused after a restart');
  const r = await fetch(`${again.admin}/api/resume`, { method: 'POST' });
  t.match(await r.json(), { resumed: true, pauses: [] });
  t.equal(await verdict(again, 'whatsapp.example', GUEST), 'blocked', 'resumed');

  // The same through the command line (dist/, built by "npm test").
  const adminAddress = again.admin.replace('http://', '');
  const cli = (...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    // Asynchronously: the server answering the admin API runs in this process.
    const child = spawn(process.execPath, [CLI, ...args, '--admin', adminAddress], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  const paused = await cli('pause', '--group', 'guests', '--for', '15m');
  t.equal(paused.status, 0, paused.stderr);
  t.match(paused.stdout, /^blocking paused for guests until \S+; paused: guests until /);
  t.equal(await verdict(again, 'whatsapp.example', GUEST), 'allowed', 'paused by "sinkhole pause"');
  const resumed = await cli('resume', '--group', 'guests');
  t.match(resumed.stdout, /^resumed \(guests\); blocking is on for every group/);
  t.equal(await verdict(again, 'whatsapp.example', GUEST), 'blocked', 'resumed by "sinkhole resume"');
  const bad = await cli('pause', '--group', 'nosuch');
  t.equal(bad.status, 2);
  t.match(bad.stderr, /^sinkhole: the admin API at .* answered 400: unknown group "nosuch"; groups: default, guests\n$/);
  const lists = await cli('lists', 'update');
  t.match(lists.stdout, /no list-url lines are configured/);
  t.equal(spawnSync(process.execPath, [CLI, 'check', 'x.example', '--at', 'someday'], { encoding: 'utf8' }).stderr,
    'sinkhole: --at: "someday" is not a moment; write e.g. "mon 12:30", "12:30" or "2026-12-07 12:30"\n');
});

t.test('a list-url: first fetch in force soon after start, lists update, a restart with the site down', async (t) => {
  let body = '# chat\nviber.example\n';
  const site = createServer((_req, res) => void res.writeHead(200).end(body));
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(site.address() as AddressInfo).port}/viber.txt`;
  const stateDir = tempDir('sinkhole-state-');
  const dir = folder();
  const lines = `list-url viber ${url} every 1h\ngroup guests 127.0.2.0/24\nblock guests viber\n`;
  const started = Date.now();
  const s = await start(t, lines, { stateDir, admin: true, dir });
  t.equal(await verdict(s, 'viber.example', GUEST), 'allowed', 'the server is ready before the first download');
  while (await verdict(s, 'viber.example', GUEST) !== 'blocked' && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 100));
  t.ok(Date.now() - started < 10_000, `in force within 10 s of start (${Date.now() - started} ms)`);
  t.equal(await verdict(s, 'x.viber.example', OTHER), 'blocked', 'default has no block lines: every enabled bundle blocks, a subscription too');
  body = '# chat\nviber.example\nviber-new.example\n';
  const r = await fetch(`${s.admin}/api/lists/update`, { method: 'POST' });
  t.match(await r.json(), { lists: [{ bundle: 'viber', outcome: 'updated', rules: 2 }] });
  t.equal(await verdict(s, 'viber-new.example', GUEST), 'blocked', 'in force when the update returns');
  await s.stop();
  await new Promise<void>((r) => {
    site.closeAllConnections();
    site.close(() => r());
  });
  const offline = await start(t, lines, { stateDir, dir });
  t.equal(await verdict(offline, 'viber-new.example', GUEST), 'blocked', 'the stored copy is in force at once with the site down');
});

t.test('a config reload changes a group\'s policy under load without losing a query; a bad one keeps the old', async (t) => {
  // The load is far above the per-client rate limit: that is not what is tested here.
  const s = await start(t, 'group staff 127.0.1.0/24\nblock staff whatsapp\n', { args: ['--rate-exempt', '127.0.0.0/8'] });
  t.equal(await verdict(s, 'whatsapp.example', STAFF), 'blocked');
  t.equal(await verdict(s, 'telegram.example', STAFF), 'allowed');
  // A stream of queries from two clients, 40 in flight, while the policy changes under it.
  let sent = 0;
  let lost = 0;
  let running = true;
  const seen = { before: 0, after: 0 };
  let swapped = false;
  const worker = async (i: number) => {
    while (running) {
      const name = i % 2 === 0 ? 'telegram.example' : 'whatsapp.example';
      const reply = await udpExchange(s.port, buildQuery(name, T.A, { id: (sent++ & 0xffff) }), 3000, '127.0.0.1', i % 3 === 0 ? OTHER : STAFF);
      if (reply === null || decode(reply).rcode !== 0) lost++;
      else if (name === 'telegram.example' && i % 3 !== 0 && decode(reply).answers[0]?.text === '127.0.0.1') seen[swapped ? 'after' : 'before']++;
    }
  };
  const workers = Array.from({ length: 40 }, (_, i) => worker(i));
  await new Promise((r) => setTimeout(r, 500));
  // The new policy is compiled and swapped in before reconfigure() first awaits (the rule
  // reload that follows): every reply seen after this line was decided by it.
  const reconfigured = s.server.reconfigure(settings('group staff 127.0.1.0/24\nblock staff telegram\n'), []);
  swapped = true;
  await reconfigured;
  await new Promise((r) => setTimeout(r, 500));
  running = false;
  await Promise.all(workers);
  t.ok(sent > 200, `${sent} queries sent`);
  t.equal(lost, 0, 'every query answered');
  t.equal(seen.before, 0, 'telegram was not blocked for staff before');
  t.ok(seen.after > 0, 'and is blocked after the reload');
  t.equal(await verdict(s, 'whatsapp.example', STAFF), 'allowed');
  t.equal(await verdict(s, 'telegram.example', STAFF), 'blocked');
  let error: unknown = null;
  try {
    await s.server.reconfigure(settings('group staff 127.0.1.0/24\nblock staff telegrm\n'), []);
  } catch (err) {
    error = err;
  }
  t.type(error, ConfigError);
  t.match((error as Error).message, /^office\.conf:2: unknown bundle "telegrm"/);
  t.equal(await verdict(s, 'telegram.example', STAFF), 'blocked', 'the old policy stays');
  await s.server.reconfigure(settings('group staff 127.0.1.0/24\nblock staff teams\n'), []);
  t.equal(await verdict(s, 'teams.example', STAFF), 'blocked', 'a bundle from available/ newly named is loaded by the reload that follows');
});

t.test('the config file\'s lines: groups in force at startup; each mistake one line with file:line', async (t) => {
  const dir = folder();
  const conf = join(tempDir('sinkhole-conf-'), 'sinkhole.conf');
  writeFileSync(conf, [
    '# office', 'group    guests  127.0.2.0/24   # guest Wi-Fi', 'block    guests  signal', 'block    default none', '',
  ].join('\n'));
  const upstream = await startUpstream(real);
  t.teardown(() => upstream.close());
  const s = await startSinkhole({ upstream: upstream.address, dir, args: ['--config', conf] });
  t.teardown(() => s.close());
  t.equal(await verdict(s, 'signal.example', GUEST), 'blocked', 'a bundle in available/ blocks for the group naming it');
  t.equal(await verdict(s, 'whatsapp.example', GUEST), 'allowed');
  t.equal(await verdict(s, 'whatsapp.example', OTHER), 'allowed', 'block default none');
  t.same(s.config.policy.groups.map((g) => [g.name, g.where]), [['guests', `${conf}:2`]]);

  const fails = async (lines: string[], message: RegExp) => {
    writeFileSync(conf, lines.join('\n'));
    let error: unknown = null;
    try {
      const again = await startSinkhole({ upstream: upstream.address, dir, args: ['--config', conf] });
      await again.close();
    } catch (err) {
      error = err;
    }
    t.type(error, ConfigError);
    t.match((error as Error).message, message);
  };
  await fails(['group guests 127.0.2.0/24', 'block guests signl'], new RegExp(`^${conf}:2: unknown bundle "signl"`));
  await fails(['group guests 127.0.2.0/24', 'block gusts signal'], new RegExp(`^${conf}:2: unknown group "gusts"`));
  await fails(['schedule work mon-fri 08:00-17:30', 'schedule work mon 17:00-18:00'], new RegExp(`^${conf}:2: schedule work window "mon 17:00-18:00" overlaps`));
  await fails(['schedule work mon-fri 8h-17h'], new RegExp(`^${conf}:1: "8h" is not a time of day`));
  await fails(['block guests teams during wrk', 'group guests 127.0.2.0/24'], new RegExp(`^${conf}:1: unknown schedule "wrk"`));
  await fails(['list-url viber ftp://x.example/v.txt'], new RegExp(`^${conf}:1: ftp: URLs cannot be fetched`));
});

t.test('SIGHUP re-reads the config file: a group\'s policy changes in the running server; a bad line keeps it', async (t) => {
  const dir = folder();
  const conf = join(tempDir('sinkhole-conf-'), 'sinkhole.conf');
  writeFileSync(conf, 'group guests 127.0.2.0/24\nblock guests whatsapp\n');
  const upstream = await startUpstream(real);
  t.teardown(() => upstream.close());
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--config', conf, '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address,
    '--blocklists', dir, '--state-dir', tempDir('sinkhole-state-')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const until = async (what: () => boolean | Promise<boolean>, ms: number) => {
    const end = Date.now() + ms;
    while (!(await what()) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return what();
  };
  t.ok(await until(() => out.includes('"msg":"ready"'), 15_000), 'the server is ready');
  const s = { port } as TestServer;
  t.equal(await verdict(s, 'whatsapp.example', GUEST), 'blocked');
  t.equal(await verdict(s, 'telegram.example', GUEST), 'allowed');
  writeFileSync(conf, 'group guests 127.0.2.0/24\nblock guests telegram\n');
  child.kill('SIGHUP');
  t.ok(await until(async () => (await verdict(s, 'telegram.example', GUEST)) === 'blocked', 3000), 'telegram blocked for guests after SIGHUP');
  t.equal(await verdict(s, 'whatsapp.example', GUEST), 'allowed');
  t.ok(await until(() => /config reloaded: groups, schedules, block, allow and list-url lines, exempt clients/.test(out), 3000), 'logged');
  writeFileSync(conf, 'group guests 127.0.2.0/24\nblock guests telegrm\n');
  child.kill('SIGHUP');
  t.ok(await until(() => out.includes('config reload failed'), 3000));
  t.match(out, new RegExp(`config reload failed: ${conf.replace(/[.]/g, '\\.')}:2: unknown bundle \\\\"telegrm\\\\"`));
  t.equal(await verdict(s, 'telegram.example', GUEST), 'blocked', 'the running policy stays');
});
