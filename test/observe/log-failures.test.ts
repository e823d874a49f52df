// A log is never the reason DNS stops: a query log that cannot be reopened after logrotate
// (SIGHUP) or written (a full disk) costs one line and the server goes on; with stdout piped
// into a reader that exits (`sinkhole serve | head -n 3`), SIGTERM still ends the process.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createLogger } from '../../src/observe/log.js';
import type { QueryEvent } from '../../src/observe/event.js';
import { QueryLog } from '../../src/observe/query-log.js';
import { parseQuery, Query } from '../../src/wire/query.js';
import { ask } from '../helpers/client.js';
import { buildQuery, T } from '../helpers/dns.js';
import { captureLogs, freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `promise`, or `fallback` after `ms` (the timer does not outlive the race). */
async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([promise, new Promise<F>((resolve) => { timer = setTimeout(() => resolve(fallback), ms); })]);
  clearTimeout(timer);
  return result;
}

/** Runs `code` (ESM, may import dist/) in a new node; resolves with its exit code, or 'hung' after `ms`. */
async function runNode(code: string, ms: number, stdout: 'pipe-closed' | 'ignore'): Promise<number | null | 'hung'> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', stdout === 'ignore' ? 'ignore' : 'pipe', 'ignore'] });
  // The reader goes away before the first line is written: every write gets EPIPE.
  if (stdout === 'pipe-closed') child.stdout!.destroy();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const result = await within(exited, ms, 'hung' as const);
  if (result === 'hung') child.kill('SIGKILL');
  return result;
}

/** What the pipeline tells observers about a forwarded query for `name`. */
function query(name: string): QueryEvent {
  const q = parseQuery(buildQuery(name, T.A));
  if (!(q instanceof Query)) throw new Error('not a query');
  q.clientAddress = '192.0.2.1';
  return { query: q, outcome: 'forwarded', rcode: 0, upstream: '192.0.2.53:53', at: Date.now(), decision: -1, rule: () => null, elapsedMs: () => 1 };
}

async function linesOf(file: string, want: number): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.length >= want) return lines;
    await sleep(20);
  }
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

t.test('a query log that cannot be reopened: one error line, logging goes on into the file it had', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'logs'));
  const file = join(dir, 'logs', 'queries.log');
  const { output, logs } = captureLogs();
  const queryLog = new QueryLog(file, { kind: 'all' }, output.log);
  queryLog.answered(query('before.example'));
  t.equal((await linesOf(file, 1)).length, 1, 'the first line is written');

  // logrotate moved the folder away, and something that is not a folder took its name:
  // opening the log again fails (ENOTDIR; for an unprivileged server a read-only folder, EACCES).
  renameSync(join(dir, 'logs'), join(dir, 'logs.1'));
  writeFileSync(join(dir, 'logs'), 'not a folder');
  queryLog.reopen();
  t.match(logs, [{ level: 50, file, code: 'ENOTDIR', msg: /^cannot reopen the log .*queries\.log: ENOTDIR; still writing to the file it had open; make the folder writable/ }],
    'one error line, with the file, the reason and the fix');
  queryLog.reopen();
  t.equal(logs.length, 2, 'each failed reopen is told once');
  queryLog.answered(query('after.example'));
  const old = await linesOf(join(dir, 'logs.1', 'queries.log'), 2);
  t.match(old[1], /after\.example/, 'the next line went into the file that was open');

  // Fixed: the next SIGHUP reopens.
  rmSync(join(dir, 'logs'));
  mkdirSync(join(dir, 'logs'));
  queryLog.reopen();
  await sleep(50);
  queryLog.answered(query('fixed.example'));
  t.match((await linesOf(file, 1))[0], /fixed\.example/, 'a new file once the folder is back');
  t.equal(logs.length, 2, 'no further error');
  queryLog.flush();
});

t.test('a log that cannot be written (a full disk: /dev/full) costs one line a minute, never the process', async (t) => {
  const problems: string[] = [];
  const out = createLogger('info', '/dev/full', (message) => problems.push(message));
  for (let i = 0; i < 50; i++) {
    out.log.info({ i }, 'a line that cannot be written');
    await sleep(2);
  }
  await sleep(100);
  t.equal(problems.length, 1, 'told once');
  t.match(problems[0], /^cannot write the log \/dev\/full: ENOSPC/);
  out.flush();
  t.pass('flush() returned');
});

t.test('process.exit() returns with lines still buffered for a log that fails (sonic-boom\'s flushSync would retry for ever)', async (t) => {
  const log = JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'observe', 'log.js'));
  const script = (file: string): string => `import { createLogger } from ${log};
    const out = createLogger('info', ${file});
    for (let i = 0; i < 100; i++) out.log.info({ i }, 'a line into a log that fails');
    process.exit(0);`;
  t.equal(await runNode(script('undefined'), 8000, 'pipe-closed'), 0, 'stdout\'s reader gone (EPIPE): exits 0');
  t.equal(await runNode(script('"/dev/full"'), 8000, 'ignore'), 0, 'a full disk (ENOSPC): exits 0');
  t.equal(await runNode(`import { createLogger } from ${log};
    const out = createLogger('info', '/dev/full');
    out.log.info('x');
    out.flush();
    process.exit(0);`, 8000, 'ignore'), 0, 'flush() then exit: exits 0');
});

t.test('the real server as an unprivileged user: SIGHUP after logrotate into a read-only folder (EACCES) keeps DNS up', async (t) => {
  const root = process.getuid?.() === 0;
  if (!root) {
    if (process.env.CI) t.fail('this test needs root to drop to an unprivileged user');
    else t.comment('skipped: needs root to drop to an unprivileged user');
    return;
  }
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.80' }] }));
  t.teardown(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-log-'));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lists = join(dir, 'lists');
  const logs = join(dir, 'logs');
  mkdirSync(lists);
  mkdirSync(logs);
  chownSync(logs, 65534, 65534);
  const file = join(logs, 'queries.log');
  const port = await freePort();
  const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '/usr/bin/env', '-i', process.execPath, CLI, 'serve',
    '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', lists, '--query-log', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => child.kill('SIGKILL'));
  for (let i = 0; i < 100 && !stdout.includes('"ready"'); i++) await sleep(50);
  t.match(stdout, /"msg":"ready"/, 'ready');
  t.equal((await ask(port, 'one.example', T.A)).answers[0]?.text, '192.0.2.80');
  await linesOf(file, 1);
  renameSync(file, `${file}.1`);
  chmodSync(logs, 0o555);
  child.kill('SIGHUP');
  // The query log's problems go to the server's own log (JSON on stdout here), one line each.
  for (let i = 0; i < 100 && !stdout.includes('cannot reopen'); i++) await sleep(20);
  const told = stdout.split('\n').filter((l) => l.includes('cannot reopen'));
  t.match(told[0], /"msg":"cannot reopen the log .*queries\.log: EACCES; still writing to the file it had open/, 'one line in the server\'s log');
  t.equal(told.length, 1, 'one line only');
  t.equal(stderr, '', 'nothing on stderr');
  t.equal((await ask(port, 'two.example', T.A)).answers[0]?.text, '192.0.2.80', 'still answering after the SIGHUP');
  t.match((await linesOf(`${file}.1`, 2))[1], /two\.example/, 'queries logged into the rotated file meanwhile');
  child.kill('SIGTERM');
  t.equal(await within(exited, 8000, 'still running'), 0, 'SIGTERM exits 0');
});

t.test('`sinkhole serve | head -n 3`: SIGTERM still ends the process after its reader went away', async (t) => {
  if (spawnSync('head', ['--version']).status !== 0) {
    if (process.env.CI) t.fail('head is needed');
    return;
  }
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.80' }] }));
  t.teardown(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-pipe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const head = spawn('head', ['-n', '3'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const headDone = new Promise<void>((resolve) => head.on('exit', () => resolve()));
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', dir,
    '--query-log', 'stdout'], { stdio: ['ignore', head.stdin, 'pipe'] });
  head.stdin.destroy(); // only the server holds the pipe's writing end now
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => child.kill('SIGKILL'));
  await within(headDone, 10_000, null);
  t.equal(head.exitCode, 0, 'head read its 3 lines and left');
  // More lines into the broken pipe (each query is logged), then SIGTERM.
  for (let i = 0; i < 5; i++) t.equal((await ask(port, `q${i}.example`, T.A)).answers[0]?.text, '192.0.2.80', 'still answering');
  child.kill('SIGTERM');
  const code = await within(exited, 8000, 'still running');
  t.equal(code, 0, 'exits 0 on SIGTERM');
});
