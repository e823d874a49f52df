// `sinkhole check NAME --resolve` asks the upstream and applies the answer rules, as the
// server does: a CNAME into a blocked name and an answer address in an ip: rule are blocked.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { T } from '../helpers/dns.js';
import { writeLists } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

t.test('check --resolve: CNAME and answer-IP verdicts', async (t) => {
  const upstream = await startUpstream((q) => {
    if (q.name === 'chat.example.org') return { answers: [{ name: q.rawName, type: T.CNAME, ttl: 60, data: 'edge.messenger.hotmail.com' }, { name: 'edge.messenger.hotmail.com', type: T.A, ttl: 60, data: '192.0.2.5' }] };
    if (q.name === 'oscar.example.net') return { answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '64.12.24.50' }] };
    return { answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.80' }] };
  });
  t.teardown(() => upstream.close());
  const dir = writeLists({ 'msn-messenger.txt': 'messenger.hotmail.com\n', 'aim-icq.txt': 'ip:64.12.24.0/22\n' });
  const base = ['--blocklists', dir, '--upstream', upstream.address];

  const plain = await run(['check', 'chat.example.org', ...base]);
  t.equal(plain.code, 0, 'without --resolve only the name is checked: allowed');
  t.equal(upstream.queries.length, 0, 'and nothing is asked upstream');

  const cname = await run(['check', 'chat.example.org', '--resolve', ...base]);
  t.equal(cname.code, 1, 'with --resolve: blocked');
  t.match(cname.stdout, /BLOCKED -> 127\.0\.0\.1\n  why: the answer's CNAME chain passes through messenger\.hotmail\.com, blocked/);
  t.match(cname.stdout, /upstream: 127\.0\.0\.1:\d+ answered NOERROR/);

  const ip = await run(['check', 'oscar.example.net', '--resolve', '--json', ...base]);
  t.equal(ip.code, 1);
  t.match(JSON.parse(ip.stdout), { verdict: 'blocked', decidedBy: { rule: 'ip:64.12.24.0/22', bundle: 'aim-icq' } }, 'the ip: rule decides');

  const fine = await run(['check', 'www.example.org', '--resolve', ...base]);
  t.equal(fine.code, 0);
  t.match(fine.stdout, /ALLOWED -> forwarded upstream \(its answer passes the answer rules\)/);

  const before = upstream.queries.length;
  t.equal((await run(['check', 'x.messenger.hotmail.com', '--resolve', ...base])).code, 1);
  t.equal(upstream.queries.length, before, 'a name blocked by itself is not asked upstream (the server would not either)');
});
