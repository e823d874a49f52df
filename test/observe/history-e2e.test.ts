// History through the real server: blocked attempts stored, the server stopped (SIGTERM)
// and killed (SIGKILL), `sinkhole report` and GET /api/report counting them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');

async function startServer(args: string[]): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise<void>((resolve) => child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('"msg":"ready"')) resolve();
  }));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await ready;
  return { child, exited };
}

function report(stateDir: string, ...args: string[]): { rows: { key: string; count: number }[] } {
  const r = spawnSync(process.execPath, [CLI, 'report', '--state-dir', stateDir, '--format', 'json', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { rows: { key: string; count: number }[] };
}

t.test('attempts survive SIGTERM and a kill -9 loses at most the last batch', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.1' }] }));
  t.teardown(() => upstream.close());
  const lists = mkdtempSync(join(tmpdir(), 'hist-lists-'));
  writeFileSync(join(lists, 'msn-messenger.txt'), 'messenger.hotmail.com\n');
  writeFileSync(join(lists, 'yahoo-messenger.txt'), 'msg.yahoo.com\n');
  const stateDir = mkdtempSync(join(tmpdir(), 'hist-state-'));
  const port = await freePort();
  const adminPort = await freePort();
  const args = ['--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', lists, '--state-dir', stateDir,
    '--rate-limit', '0', '--admin', `127.0.0.1:${adminPort}`];

  const first = await startServer(args);
  t.teardown(() => first.child.kill('SIGKILL'));
  for (let i = 0; i < 7; i++) await ask(port, 'messenger.hotmail.com', T.A, { from: '127.0.0.2' });
  for (let i = 0; i < 3; i++) await ask(port, 'scs.msg.yahoo.com', T.A, { from: '127.0.0.3' });
  await ask(port, 'www.example.org', T.A, { from: '127.0.0.2' });
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'stopped cleanly');
  const byClient = report(stateDir, '--by', 'client');
  t.same(byClient.rows.map((r) => [r.key, r.count]).sort(), [['127.0.0.2', 7], ['127.0.0.3', 3]], 'every blocked attempt, repeats too, after SIGTERM');
  t.same(report(stateDir, '--by', 'bundle').rows.map((r) => [r.key, r.count]).sort(), [['msn-messenger', 7], ['yahoo-messenger', 3]]);

  const second = await startServer(args);
  for (let i = 0; i < 5; i++) await ask(port, 'messenger.hotmail.com', T.A, { from: '127.0.0.4' });
  const api = await (await fetch(`http://127.0.0.1:${adminPort}/api/report?by=bundle&since=1d`)).json() as { rows: { key: string; count: number }[] };
  t.ok(api.rows.length >= 1, 'GET /api/report answers from the database while the server runs');
  // Past one batch interval the attempts are on disk; a kill -9 then loses nothing.
  await new Promise((r) => setTimeout(r, 1500));
  second.child.kill('SIGKILL');
  await second.exited;
  t.equal(report(stateDir, '--by', 'client', '--client', '127.0.0.4').rows[0]?.count, 5, 'kill -9 after a batch: nothing lost');
  const stats = await (await fetch(`http://127.0.0.1:${adminPort}/api/report`).catch(() => null));
  t.equal(stats, null, 'the killed server no longer answers');
});
