// Input that used to be accepted although wrong, or answered with a misleading message:
// each now stops startup with one clear line (exit 2) and nothing is left behind.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bad-'));
const serve = (...args: string[]) => spawnSync(process.execPath, [CLI, 'serve', '--blocklists', dir, ...args], { encoding: 'utf8', timeout: 20000 });

t.test('each mistake: exit 2 and one line saying what, where and the fix', async (t) => {
  writeFileSync(join(dir, 'binary.conf'), 'listen \x01\x02\x1b[31mred\n');
  writeFileSync(join(dir, 'long.conf'), `cache-size ${'9'.repeat(100_000)}\n`);
  writeFileSync(join(dir, 'a-file'), '');
  const cases: [string, string[], RegExp][] = [
    ['upstream port 0', ['--upstream', '127.0.0.1:0'], /upstream "127\.0\.0\.1:0": port 0 is no port a server answers on; give the real one \(e\.g\. 127\.0\.0\.1:53\)/],
    ['a binary config file', ['--config', join(dir, 'binary.conf')], /binary\.conf:1: control characters in the line: is .* a text config file\?/],
    ['a 100 KB value', ['--config', join(dir, 'long.conf'), '--upstream', '192.0.2.1'], /long\.conf:1: a line of 100011 characters; a setting is one short line/],
    ['a control character in a flag', ['--upstream', '192.0.2.1', '--blocked-ttl', '1\x1b'], /option --blocked-ttl: a value with control characters/],
    ['--query-log under a file', ['--upstream', '192.0.2.1', '--listen', '127.0.0.1:15911', '--query-log', join(dir, 'a-file', 'q.log')], /cannot open --query-log .*a-file\/q\.log: ENOTDIR; give a file in an existing folder/],
    ['--query-log in a missing folder', ['--upstream', '192.0.2.1', '--listen', '127.0.0.1:15912', '--query-log', join(dir, 'no', 'such', 'q.log')], /cannot open --query-log .*: ENOENT/],
    ['--listen given twice', ['--upstream', '192.0.2.1', '--listen', '127.0.0.1:15913', '--listen', '127.0.0.1:15913'], /listen 127\.0\.0\.1:15913 is given twice; give each address once/],
    ['an IPv6 listen address without brackets', ['--upstream', '192.0.2.1', '--listen', '::1:5353'], /"::1:5353" needs a port: write an IPv6 address in brackets, then the port \(e\.g\. \[::1\]:5353\)/],
    ['an empty admin token', ['--upstream', '192.0.2.1', '--admin', '0.0.0.0:18053', '--admin-token', ''], /admin-token: an empty value/],
  ];
  for (const [label, args, message] of cases) {
    const r = serve(...args);
    t.equal(r.status, 2, `${label}: exit 2`);
    t.match(r.stderr, message, `${label}: the message`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${label}: one line`);
    t.notMatch(r.stderr, /[\x00-\x08\x1b]/, `${label}: no control characters echoed`);
  }
  t.notOk(existsSync(join(dir, 'no')), 'no folder was created for the query log');
});
