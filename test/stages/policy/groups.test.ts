// Groups, schedules, pause and the per-group tables, as units: parsing with file:line
// errors, longest-prefix group lookup, windows over midnight and week ends in the local
// time zone, boundaries, the (group, bundle) table and the rule walk that reads it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../../../src/config/config.js';
import { bundleId } from '../../../src/stages/policy/bundle-ids.js';
import { parseDuration } from '../../../src/stages/policy/duration.js';
import { compileGroupPolicy, parseAllowLine, parseBlockLine, type BundleRuleLine } from '../../../src/stages/policy/group-policy.js';
import { GroupTable, parseGroupLine } from '../../../src/stages/policy/groups.js';
import { parseListText } from '../../../src/stages/policy/list-file.js';
import { ALL_GROUPS, PauseState } from '../../../src/stages/policy/pause.js';
import { offsetOf, ruleOf, RuleSet } from '../../../src/stages/policy/ruleset.js';
import { buildSchedules, parseAt, parseScheduleLine, Schedule } from '../../../src/stages/policy/schedules.js';
import { textToKey } from '../../../src/wire/names.js';
import { ClientNames } from '../../../src/observe/client-names.js';
import { captureLogs } from '../../helpers/server.js';

// The schedule tests read local time: pin it to a zone with daylight saving to prove TZ is honoured.
process.env.TZ = 'Europe/Berlin';

/** A local moment: 2026-11-30 is a Monday. */
const at = (day: number, hh: number, mm = 0) => new Date(2026, 10, 30 + day, hh, mm).getTime();
const key = (name: string) => textToKey(name) as string;

const throwsLine = (t: Test, fn: () => unknown, where: string, what: RegExp) => {
  try {
    fn();
    t.fail(`expected an error at ${where}`);
  } catch (err) {
    t.type(err, ConfigError);
    const message = (err as Error).message;
    t.ok(message.startsWith(`${where}: `), `names ${where}: ${message}`);
    t.match(message, what);
    t.notOk(message.includes('\n'), 'one line');
  }
};

t.test('schedule lines: days, ranges, lists, daily, times; errors name file:line', async (t) => {
  const s = parseScheduleLine('work mon-fri 08:00-17:30', 'a.conf:3');
  t.same([s.name, s.days, s.start, s.end], ['work', 0x1f, 480, 1050]);
  t.equal(parseScheduleLine('x mon,wed 1:00-2:00', 'f:1').days, 0b101);
  t.equal(parseScheduleLine('x fri-mon 10:00-11:00', 'f:1').days, 0b1110001, 'a range may wrap over the week end');
  t.equal(parseScheduleLine('x daily 22:00-06:00', 'f:1').days, 0x7f);
  t.equal(parseScheduleLine('x Sat,sun 00:00-24:00', 'f:1').end, 1440, 'case-insensitive; 24:00 as an end');
  throwsLine(t, () => parseScheduleLine('x mon-fri 08:00-08:00', 'a.conf:4'), 'a.conf:4', /empty/);
  throwsLine(t, () => parseScheduleLine('x mon-fri 8-17', 'a.conf:5'), 'a.conf:5', /not a time of day/);
  throwsLine(t, () => parseScheduleLine('x mon-fri 08:00-25:00', 'a.conf:6'), 'a.conf:6', /25:00/);
  throwsLine(t, () => parseScheduleLine('x mon-fri 08:61-09:00', 'a.conf:6'), 'a.conf:6', /08:61/);
  throwsLine(t, () => parseScheduleLine('x funday 08:00-09:00', 'a.conf:7'), 'a.conf:7', /"funday" .* is not a day/);
  throwsLine(t, () => parseScheduleLine('x mon-fri', 'a.conf:8'), 'a.conf:8', /expected "schedule NAME DAYS/);
  throwsLine(t, () => buildSchedules([parseScheduleLine('w mon-fri 08:00-12:00', 'a.conf:1'), parseScheduleLine('w mon 11:00-13:00', 'a.conf:2')]),
    'a.conf:2', /overlaps "mon-fri 08:00-12:00" \(a\.conf:1\) at mon 11:00/);
  throwsLine(t, () => buildSchedules([parseScheduleLine('n daily 22:00-06:00', 'a.conf:1'), parseScheduleLine('n tue 05:00-07:00', 'a.conf:9')]),
    'a.conf:9', /overlaps .* at tue 05:00/);
  t.doesNotThrow(() => buildSchedules([parseScheduleLine('w mon 08:00-12:00', 'f:1'), parseScheduleLine('w mon 12:00-13:00', 'f:2')]), 'windows may meet');
  t.doesNotThrow(() => buildSchedules([parseScheduleLine('w mon 08:00-12:00', 'f:1'), parseScheduleLine('v mon 08:00-12:00', 'f:2')]), 'different schedules may overlap');
});

t.test('isActive: windows, several windows per name, over midnight and over Sunday night', async (t) => {
  const work = buildSchedules([parseScheduleLine('work mon-fri 08:00-12:00', 'f:1'), parseScheduleLine('work mon-fri 13:00-17:30', 'f:2')]).get('work')!;
  t.ok(work.isActive(at(0, 8)), 'Monday 08:00 (start is inside)');
  t.notOk(work.isActive(at(0, 7, 59)), 'Monday 07:59');
  t.notOk(work.isActive(at(0, 12, 30)), 'the gap between two windows');
  t.ok(work.isActive(at(4, 17, 29)), 'Friday 17:29');
  t.notOk(work.isActive(at(4, 17, 30)), 'the end is outside');
  t.notOk(work.isActive(at(5, 10)), 'Saturday');
  const night = new Schedule('night', [parseScheduleLine('night daily 22:00-06:00', 'f:1')]);
  t.ok(night.isActive(at(0, 23)) && night.isActive(at(1, 5, 59)) && !night.isActive(at(1, 6)) && !night.isActive(at(1, 21, 59)));
  const weekend = new Schedule('we', [parseScheduleLine('we sun 20:00-02:00', 'f:1')]);
  t.ok(weekend.isActive(at(6, 23, 30)), 'Sunday 23:30');
  t.ok(weekend.isActive(at(7, 1, 59)), 'Monday 01:59: a Sunday window runs into the next week');
  t.notOk(weekend.isActive(at(7, 2)));
});

t.test('nextBoundary: the next start or end, in wall-clock time across daylight saving', async (t) => {
  const work = new Schedule('work', [parseScheduleLine('work mon-fri 08:00-17:30', 'f:1')]);
  t.equal(work.nextBoundary(at(0, 7, 59) + 30_000), at(0, 8), 'from inside a minute to the next start');
  t.equal(work.nextBoundary(at(0, 8)), at(0, 17, 30), 'from a start to its end');
  t.equal(work.nextBoundary(at(4, 18)), at(7, 8), 'Friday evening -> Monday 08:00');
  // Europe/Berlin goes back one hour on 2026-10-25 (a Sunday): that day has 25 hours.
  const sunday = new Date(2026, 9, 25, 0, 30).getTime();
  t.equal(new Date(work.nextBoundary(sunday)).getHours(), 8, 'still 08:00 local after the clock went back');
  t.equal(work.nextBoundary(sunday), new Date(2026, 9, 26, 8, 0).getTime());
  const lunch = new Schedule('lunch', [parseScheduleLine('lunch daily 12:00-13:00', 'f:1')]);
  for (let m = lunch.nextBoundary(at(0, 0)); m < at(7, 0); m = lunch.nextBoundary(m)) {
    t.not(lunch.isActive(m), lunch.isActive(m - 60_000), `the state changes at ${new Date(m).toString()}`);
  }
});

t.test('parseAt and durations', async (t) => {
  const now = at(2, 9); // a Wednesday
  t.equal(parseAt('mon 12:30', '--at', now), at(0, 12, 30), 'this week\'s Monday');
  t.equal(parseAt('12:30', '--at', now), at(2, 12, 30), 'today');
  t.equal(parseAt('2026-12-07 08:15', '--at', now), new Date(2026, 11, 7, 8, 15).getTime());
  throwsLine(t, () => parseAt('noonish', '--at', now), '--at', /not a moment/);
  t.equal(parseDuration('15m', 'f:1'), 900_000);
  t.equal(parseDuration('1h30m', 'f:1'), 5_400_000);
  t.equal(parseDuration('24h', 'f:1'), 86_400_000);
  throwsLine(t, () => parseDuration('soon', 'f:2'), 'f:2', /not a duration/);
  throwsLine(t, () => parseDuration('0m', 'f:2'), 'f:2', /not a duration/);
});

t.test('groups: longest prefix wins, IPv4 and IPv6, mapped addresses, default', async (t) => {
  const table = new GroupTable([
    parseGroupLine('staff 192.168.1.0/24 fd00:1::/64', 'a.conf:1'),
    parseGroupLine('admins 192.168.1.16 192.168.1.17', 'a.conf:2'),
    parseGroupLine('lab 192.168.1.0/28', 'a.conf:3'),
    parseGroupLine('Staff 10.0.0.0/8', 'a.conf:4'),
  ]);
  t.same(table.names, ['default', 'staff', 'admins', 'lab']);
  const name = (a: string) => table.names[table.groupOf(a)];
  t.equal(name('192.168.1.100'), 'staff');
  t.equal(name('192.168.1.16'), 'admins', 'an exact address beats the /24');
  t.equal(name('192.168.1.5'), 'lab', 'a /28 beats the /24');
  t.equal(name('192.168.1.18'), 'staff', 'outside the /28 (0-15)');
  t.equal(name('::ffff:192.168.1.17'), 'admins', 'IPv4-mapped IPv6');
  t.equal(name('fd00:1::abcd'), 'staff');
  t.equal(name('fd00:2::1'), 'default');
  t.equal(name('10.1.2.3'), 'staff', 'a second line adds to the group; names are case-insensitive');
  t.equal(name('172.16.0.1'), 'default');
  t.equal(name('172.16.0.1'), 'default', 'and again from the memo');
  t.same(table.matchedBy('192.168.1.16'), { cidr: '192.168.1.16', where: 'a.conf:2' });
  throwsLine(t, () => parseGroupLine('staff 192.168.1.0/33', 'a.conf:5'), 'a.conf:5', /prefix length/);
  throwsLine(t, () => parseGroupLine('staff laptop!ceo', 'a.conf:6'), 'a.conf:6', /not an IPv4 or IPv6 address.*or a client name/);
  throwsLine(t, () => parseGroupLine('staff 192.168.1.300', 'a.conf:6'), 'a.conf:6', /not an IPv4 or IPv6 address/);
  t.same(parseGroupLine('boss Laptop-CEO.lan 10.9.0.0/16', 'a.conf:9').clientNames, ['laptop-ceo.lan'], 'a client name is a member too');
  throwsLine(t, () => parseGroupLine('default 10.0.0.0/8', 'a.conf:7'), 'a.conf:7', /"default"/);
  throwsLine(t, () => parseGroupLine('staff', 'a.conf:8'), 'a.conf:8', /expected "group NAME/);
  throwsLine(t, () => new GroupTable([parseGroupLine('a 10.0.0.0/8', 'a.conf:1'), parseGroupLine('b 10.0.0.0/8', 'a.conf:2')]),
    'a.conf:2', /already in group a \(a\.conf:1\)/);
});

t.test('block and allow lines', async (t) => {
  t.same(parseBlockLine('staff Teams during work', 'f:1'), { kind: 'block', group: 'staff', bundles: ['teams'], none: false, schedule: 'work', where: 'f:1' });
  t.same(parseBlockLine('admins none', 'f:2').none, true);
  t.same(parseAllowLine('staff whatsapp during lunch', 'f:3').schedule, 'lunch');
  throwsLine(t, () => parseBlockLine('staff', 'f:4'), 'f:4', /expected "block GROUP/);
  throwsLine(t, () => parseBlockLine('staff teams during', 'f:5'), 'f:5', /"during" takes one schedule/);
  throwsLine(t, () => parseBlockLine('staff none whatsapp', 'f:6'), 'f:6', /"none" stands alone/);
  throwsLine(t, () => parseAllowLine('staff none', 'f:7'), 'f:7', /block staff none/);
});

// The office of the README: staff, admins, guests and a lunch break.
const office = {
  groups: [parseGroupLine('staff 192.168.1.0/24', 'o.conf:1'), parseGroupLine('admins 192.168.1.16', 'o.conf:2'), parseGroupLine('guests 192.168.50.0/24', 'o.conf:3')],
  schedules: [parseScheduleLine('work mon-fri 08:00-17:30', 'o.conf:4'), parseScheduleLine('lunch mon-fri 12:00-13:00', 'o.conf:5')],
  rules: [
    parseBlockLine('staff whatsapp telegram', 'o.conf:6'),
    parseBlockLine('staff teams during work', 'o.conf:7'),
    parseAllowLine('staff whatsapp during lunch', 'o.conf:8'),
    parseBlockLine('guests whatsapp telegram signal', 'o.conf:9'),
    parseBlockLine('admins none', 'o.conf:10'),
  ] as BundleRuleLine[],
};
const known = (name: string) => (['whatsapp', 'telegram', 'signal', 'teams', 'msn'].includes(name) ? 'known' as const : 'unknown' as const);

t.test('the table: which bundle blocks for which group, at which time', async (t) => {
  let now = at(0, 10);
  const { policy } = compileGroupPolicy(office, known, null, () => now);
  policy.setEnabledBundles(['whatsapp', 'telegram', 'msn'].map(bundleId));
  const blocks = (client: string, bundle: string) => policy.blocks(policy.groupOf(client), bundleId(bundle));
  t.ok(blocks('192.168.1.5', 'teams'), 'staff: teams during work');
  t.ok(blocks('192.168.1.5', 'whatsapp'), 'staff: whatsapp outside lunch');
  t.notOk(blocks('192.168.1.5', 'msn'), 'staff is listed: msn (enabled, not listed) does not block');
  t.ok(blocks('10.9.9.9', 'msn') && blocks('10.9.9.9', 'whatsapp'), 'default: every enabled bundle');
  t.notOk(blocks('10.9.9.9', 'teams'), 'default: a standby bundle does not block');
  t.ok(blocks('192.168.50.3', 'signal'), 'guests: signal, listed though not enabled');
  t.notOk(blocks('192.168.1.16', 'whatsapp'), 'admins: none');
  now = at(0, 12, 15);
  policy.rebuild();
  t.notOk(blocks('192.168.1.5', 'whatsapp'), 'lunch: allow wins over block');
  t.ok(blocks('192.168.1.5', 'telegram'), 'lunch: the rest still blocks');
  now = at(5, 12, 15);
  policy.rebuild();
  t.ok(blocks('192.168.1.5', 'whatsapp'), 'Saturday: no lunch break schedule, whatsapp blocks');
  t.notOk(blocks('192.168.1.5', 'teams'), 'Saturday: teams only during work');
  const why = policy.explain('192.168.1.5', at(0, 12, 15));
  t.equal(why.group, 'staff');
  t.same(why.schedules.map((s) => [s.name, s.inForce]), [['work', true], ['lunch', true]]);
  t.same(policy.blockingAt(policy.groupOf('192.168.1.5'), at(0, 12, 15)), ['teams', 'telegram']);
});

t.test('compile errors name the line; pending bundles warn', async (t) => {
  const lines = (rules: BundleRuleLine[]) => ({ ...office, rules });
  throwsLine(t, () => compileGroupPolicy(lines([parseBlockLine('staf whatsapp', 'o.conf:20')]), known), 'o.conf:20', /unknown group "staf".*default, staff, admins, guests/);
  throwsLine(t, () => compileGroupPolicy(lines([parseBlockLine('staff whatsap', 'o.conf:21')]), known), 'o.conf:21', /unknown bundle "whatsap"/);
  throwsLine(t, () => compileGroupPolicy(lines([parseBlockLine('staff teams during wrk', 'o.conf:22')]), known), 'o.conf:22', /unknown schedule "wrk".*work, lunch/);
  throwsLine(t, () => compileGroupPolicy(lines([parseBlockLine('staff teams', 'o.conf:23'), parseBlockLine('staff none', 'o.conf:24')]), known),
    'o.conf:24', /contradicts the block line at o\.conf:23/);
  const { warnings } = compileGroupPolicy(lines([parseBlockLine('staff viber', 'o.conf:25')]), (n) => (n === 'viber' ? 'pending' : known(n)));
  t.match(warnings, [/^o\.conf:25: bundle "viber" is not downloaded yet/]);
});

t.test('the boundary timer switches the table by itself', async (t) => {
  // The policy's clock runs ahead of the real one so that a minute boundary is 1.5 s away;
  // the timer itself is real.
  const real = Date.now();
  const start = Math.ceil((real + 60_000) / 60_000) * 60_000;
  const offset = start - 1500 - real;
  const clock = () => Date.now() + offset;
  const hhmm = (ms: number) => { const d = new Date(ms); return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`; };
  const { policy } = compileGroupPolicy({
    groups: [parseGroupLine('staff 192.168.1.0/24', 'f:1')],
    schedules: [parseScheduleLine(`soon daily ${hhmm(start)}-${hhmm(start + 120_000)}`, 'f:2')],
    rules: [parseBlockLine('staff teams during soon', 'f:3')],
  }, known, null, clock);
  policy.start();
  t.teardown(() => policy.stop());
  const staff = policy.groupOf('192.168.1.1');
  t.notOk(policy.blocks(staff, bundleId('teams')), 'not yet');
  const table = policy.active;
  while (clock() < start + 1000) await new Promise((r) => setTimeout(r, 50));
  t.ok(policy.blocks(staff, bundleId('teams')), 'blocks within a second of the window start');
  t.not(policy.active, table, 'a new table, swapped in whole');
});

t.test('matchFor: a rule counts only when its bundle blocks for the group; allow counts for all', async (t) => {
  const files = [
    parseListText('/l/teams.txt', 'teams.microsoft.com\n'),
    parseListText('/l/skype.txt', 'teams.microsoft.com\nmicrosoft.com\n'),
    parseListText('/l/web.txt', 'web.whatsapp.com\n'),
    parseListText('/l/whatsapp.txt', 'whatsapp.com\nip:157.240.0.0/16\n'),
    parseListText('/l/local.allow.txt', 'ok.whatsapp.com\n'),
  ];
  const rules = new RuleSet(files);
  const stride = 64;
  const row = (...bundles: string[]) => {
    const a = new Uint8Array(stride * 2);
    for (const b of bundles) a[stride + bundleId(b)] = 1;
    return a;
  };
  const hit = (name: string, active: Uint8Array) => {
    const m = rules.matchFor(key(name), active, stride);
    const g = ruleOf(m);
    return m < 0 ? null : `${rules.describe(g).bundle}:${rules.describe(g).rule}${rules.isAllow(g) ? ':allow' : ''}@${offsetOf(m)}`;
  };
  t.equal(hit('teams.microsoft.com', row('teams', 'skype')), 'teams:teams.microsoft.com@0', 'the first rule of the name when its bundle is active');
  t.equal(hit('teams.microsoft.com', row('skype')), 'skype:teams.microsoft.com@0', 'another file\'s rule of the same name');
  t.equal(hit('x.web.whatsapp.com', row('whatsapp')), 'whatsapp:whatsapp.com@6', 'the parent when the specific rule\'s bundle is off');
  t.equal(hit('x.web.whatsapp.com', row()), null, 'nothing active: not blocked');
  t.equal(hit('ok.whatsapp.com', row('whatsapp')), 'local:ok.whatsapp.com:allow@0', 'allow rules count for every group');
  t.equal(hit('teams.microsoft.com', row('web')), null);
  t.equal(rules.match(key('teams.microsoft.com')), rules.matchFor(key('teams.microsoft.com'), row('teams', 'skype', 'web', 'whatsapp'), stride), 'all active: as match()');
  const address = Buffer.from([157, 240, 1, 2]);
  t.equal(rules.matchAddressFor(address, 0, 4, row('whatsapp'), stride), 0);
  t.equal(rules.matchAddressFor(address, 0, 4, row('skype'), stride), -1);
});

t.test('pause: per group or all, runs out by itself, survives a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-pause-'));
  const file = join(dir, 'pause.json');
  let now = 1_000_000;
  const p = new PauseState(file, () => now);
  t.teardown(() => p.close());
  let changes = 0;
  p.onChange = () => changes++;
  p.pause('staff', 60_000);
  t.ok(p.isPaused('staff') && !p.isPaused('guests'));
  t.equal(changes, 1);
  const again = new PauseState(file, () => now);
  t.ok(again.isPaused('staff'), 'read back from the state file');
  now += 60_001;
  t.notOk(again.isPaused('staff'), 'ran out');
  again.close();
  p.pause(ALL_GROUPS, null);
  t.ok(p.isPaused('anything'), 'all groups, until resume');
  t.same(JSON.parse(readFileSync(file, 'utf8')).pauses, [{ group: '*', until: null }], 'the expired pause is dropped from the file');
  t.ok(p.resume());
  t.notOk(p.isPaused('anything'));
  t.notOk(p.resume(), 'nothing left to resume');
  writeFileSync(file, '{not json');
  const broken = new PauseState(file);
  t.match(broken.lastError, /not valid JSON/);
  broken.close();
});

t.test('pause timer: a pause ends by itself and the group table follows', async (t) => {
  const p = new PauseState(null);
  const { policy } = compileGroupPolicy(office, known, p);
  policy.setEnabledBundles([bundleId('whatsapp')]);
  policy.start();
  t.teardown(() => { policy.stop(); p.close(); });
  const guests = policy.groupOf('192.168.50.9');
  t.ok(policy.blocks(guests, bundleId('whatsapp')));
  p.pause('guests', 300);
  t.notOk(policy.blocks(guests, bundleId('whatsapp')), 'paused at once');
  await new Promise((r) => setTimeout(r, 450));
  t.ok(policy.blocks(guests, bundleId('whatsapp')), 'back by itself');
});

t.test('groups by client name: every address of the name, re-resolved when the names change', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-group-names-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'hosts');
  writeFileSync(file, '192.168.1.23 laptop-ceo\nfd00:1::23 laptop-ceo\n');
  const source = new ClientNames([file], captureLogs().output.log);
  await source.refresh(true);
  const table = new GroupTable([parseGroupLine('staff 192.168.1.0/24 fd00:1::/64', 'a.conf:1'), parseGroupLine('boss laptop-ceo', 'a.conf:2')]);
  table.useClientNames(source);
  const name = (a: string) => table.names[table.groupOf(a)];
  t.equal(name('192.168.1.23'), 'boss', 'a name beats the /24 (an exact address)');
  t.equal(name('::ffff:192.168.1.23'), 'boss');
  t.equal(name('fd00:1::23'), 'boss', 'every address of the name');
  t.equal(name('192.168.1.24'), 'staff');
  t.same(table.matchedBy('192.168.1.23'), { cidr: 'laptop-ceo', where: 'a.conf:2' });
  writeFileSync(file, '192.168.1.24 laptop-ceo\n# a longer file: another size\n');
  t.ok(await source.refresh(), 'the file changed');
  t.equal(name('192.168.1.23'), 'staff', 'the old address left the group');
  t.equal(name('192.168.1.24'), 'boss', 'the new address joined it');
  throwsLine(t, () => new GroupTable([parseGroupLine('a nas', 'a.conf:1'), parseGroupLine('b nas', 'a.conf:2')]), 'a.conf:2', /client nas is already in group a \(a\.conf:1\)/);
});
