// The config the benchmark's groups section runs with (bench/groups-config.ts), read by the
// real `sinkhole check`: it parses, the load generator's 127.0.0.1 is in its own group and
// still blocked by the benchmark's list, the schedules meant to be in force now are and the
// others are not, and `flip` changes at each minute (the window boundary in the runs).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { groupsConfig } from '../../bench/groups-config.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');

function setup(t: Test): { check: (name: string, client: string, at?: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-groups-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'lists', 'available'), { recursive: true });
  writeFileSync(join(dir, 'lists', 'bench.txt'), 'd7.blocked-bench.test\n');
  for (const b of ['chat-a', 'chat-b', 'chat-c']) writeFileSync(join(dir, 'lists', 'available', `${b}.txt`), `app1.${b}.test\n`);
  writeFileSync(join(dir, 'groups.conf'), groupsConfig());
  return {
    check: (name, client, at) => {
      const r = spawnSync(process.execPath, [CLI, 'check', name, '--client', client, '--config', join(dir, 'groups.conf'),
        '--blocklists', join(dir, 'lists'), ...(at === undefined ? [] : ['--at', at])], { encoding: 'utf8' });
      t.equal(r.stderr, '', `check ${name} --client ${client}: nothing on stderr`);
      return r.stdout;
    },
  };
}

/** The schedules "in force" line of a check, as a sorted list (flip left out: it depends on the minute). */
const inForce = (out: string): string[] =>
  (/schedules in force: ([^(\n]*)/.exec(out)?.[1] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'flip' && s !== 'none').sort();

t.test('10 groups, the generator in its own one, blocked as without groups; 5 schedules in force now, 4 not', async (t) => {
  const { check } = setup(t);
  const generator = check('x1.d7.blocked-bench.test', '127.0.0.1');
  t.match(generator, /BLOCKED -> 127\.0\.0\.1/);
  t.match(generator, /group: loadgen \(127\.0\.0\.1,/);
  // `check` lists the schedules of the client's own group that are in force now.
  t.same(inForce(generator), ['work'], 'loadgen: work in force, lunch not');
  const groupsSchedules: [string, string[]][] = [
    ['192.168.1.50', ['always']], ['10.2.3.4', ['late']], ['10.1.2.3', ['today']], ['127.0.0.2', ['shift']],
    ['100.64.1.1', []], ['192.168.50.5', []], ['172.16.1.1', []],
  ];
  for (const [client, expected] of groupsSchedules) t.same(inForce(check('app1.chat-a.test', client)), expected, `schedules in force for ${client}`);
  t.match(check('app1.chat-b.test', '127.0.0.1'), /BLOCKED/, 'chat-b blocks for the generator while work is in force');
  t.match(check('x1.d7.blocked-bench.test', '127.0.0.9'), /group: loopback/);
  t.match(check('app1.chat-b.test', '192.168.1.16'), /ALLOWED[\s\S]*group: admins/);
  t.equal(groupsConfig().split('\n').filter((l) => l.startsWith('group ')).length, 10);
  t.equal(new Set(groupsConfig().split('\n').filter((l) => l.startsWith('schedule ')).map((l) => l.split(/\s+/)[1])).size, 10);
});

t.test('flip is in force on even minutes only: a window boundary every minute', async (t) => {
  const { check } = setup(t);
  t.match(check('app1.chat-a.test', '127.0.0.1', 'mon 10:00'), /BLOCKED/);
  t.match(check('app1.chat-a.test', '127.0.0.1', 'mon 10:01'), /ALLOWED/);
  t.match(check('app1.chat-a.test', '127.0.0.1', 'tue 23:58'), /BLOCKED/);
  t.match(check('app1.chat-a.test', '127.0.0.1', 'tue 23:59'), /ALLOWED/);
});
