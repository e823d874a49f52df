// Logs: on a terminal (a real pseudo-terminal from util-linux `script`) the server prints
// readable lines; through a pipe (journald, `| jq`) it prints pino's JSON, one object per line.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { prettyStream } from '../../src/observe/pretty.js';
import { NODE_FLAGS } from '../../src/main/node-flags.js';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const inCi = process.env.CI === 'true';
const ESC = '\x1b';
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');

/** Runs `sinkhole serve` like `npm start` does, asks one blocked name twice, stops it with
 * SIGTERM and returns everything it printed. `tty`: inside a pseudo-terminal. */
async function serve(t: Test, o: { tty: boolean; env?: Record<string, string> }): Promise<{ out: string; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'chat.txt'), '# Chat\nblocked.example\n');
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.1' }] }));
  t.teardown(() => upstream.close());
  const port = await freePort();
  const args = [...NODE_FLAGS, CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', dir];
  const env = { ...process.env, NO_COLOR: '', SINKHOLE_LOG_FORMAT: '', ...o.env };
  // script(1) gives the server a pseudo-terminal as stdout; the shell prints its PID first so
  // that the test can stop the server itself (script would leave it running on SIGHUP).
  const child = o.tty
    ? spawn('script', ['-qfec', `echo PID=$$; exec ${process.execPath} ${args.join(' ')}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'inherit'], env })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const pid = () => (o.tty ? Number(/PID=(\d+)/.exec(out)?.[1]) : child.pid!);
  t.teardown(() => { try { process.kill(pid(), 'SIGKILL'); } catch { /* gone */ } });
  const until = async (what: RegExp) => {
    // Generous: the machine may be busy (2 cores shared), and a missing line fails below.
    for (let i = 0; i < 600 && !what.test(plain(out)); i++) await new Promise((r) => setTimeout(r, 50));
    return what.test(plain(out));
  };
  t.ok(await until(/ready/), 'the server says it is ready');
  t.equal((await ask(port, 'blocked.example', T.A)).answers[0]?.text, '127.0.0.1');
  t.equal((await ask(port, 'blocked.example', T.A)).answers[0]?.text, '127.0.0.1');
  await until(/blocked \(repeated\)/);
  process.kill(pid(), 'SIGTERM');
  await exited;
  return { out, port };
}

t.test('on a terminal: readable lines, coloured unless NO_COLOR', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) {
    t.notOk(inCi, 'script (util-linux) is installed in CI');
    return;
  }
  const { out, port } = await serve(t, { tty: true });
  const lines = plain(out).split('\n').filter((l) => l.length > 0 && !l.startsWith('PID='));
  t.ok(lines.length >= 3, out);
  for (const line of lines) t.notMatch(line, /^\{/, `not JSON: ${line}`);
  t.ok(lines.some((l) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  ready listen=127\\.0\\.0\\.1:${port} `).test(l)), 'the ready line');
  t.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} INFO  blocked client=127\.0\.0\.1 qname=blocked\.example qtype=A rule=\S+chat\.txt:2 bundle=chat$/.test(l)), 'a blocked query, one line');
  t.ok(lines.some((l) => /INFO  blocked \(repeated\) client=127\.0\.0\.1 qname=blocked\.example .* repeats=1 seconds=1$/.test(l)), 'the folded repeats');
  t.match(out, `${ESC}[32mINFO`, 'the level is coloured');

  const bw = await serve(t, { tty: true, env: { NO_COLOR: '1' } });
  t.notMatch(bw.out, ESC, 'NO_COLOR: no colour codes');
  t.match(bw.out, /INFO  ready/);

  const json = await serve(t, { tty: true, env: { SINKHOLE_LOG_FORMAT: 'json' } });
  const entries = plain(json.out).split('\n').filter((l) => l.length > 0 && !l.startsWith('PID=')).map((l) => JSON.parse(l) as { msg?: string });
  t.ok(entries.some((e) => e.msg === 'blocked'), 'SINKHOLE_LOG_FORMAT=json: JSON even on a terminal');
});

t.test('through a pipe (journald, jq): one JSON object per line, as before', async (t) => {
  const { out, port } = await serve(t, { tty: false });
  const entries = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.ok(entries.some((e) => e.msg === 'ready' && Array.isArray(e.listen) && e.listen[0] === `127.0.0.1:${port}`));
  t.ok(entries.some((e) => e.msg === 'blocked' && e.qname === 'blocked.example' && e.bundle === 'chat' && e.level === 30));
  t.ok(entries.some((e) => e.msg === 'blocked (repeated)' && e.repeats === 1));
  t.notMatch(out, ESC);
});

t.test('errors: the message on the line, the stack indented below it', async (t) => {
  let written = '';
  const log = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, prettyStream({ write: (s) => { written += s; } }, false));
  log.error({ err: new Error('upstream 192.0.2.53:53 refused'), upstream: '192.0.2.53:53' }, 'forward failed');
  log.info({ note: 'two words', list: ['a', 'b'], nested: { k: 1 } }, 'values');
  const [first, second, ...rest] = written.split('\n');
  t.match(first, /^\d\d:\d\d:\d\d\.\d{3} ERROR forward failed upstream=192\.0\.2\.53:53 err="upstream 192\.0\.2\.53:53 refused"$/);
  t.match(second, /^ {4}at /, 'the stack, indented');
  t.ok(rest.some((l) => /INFO  values note="two words" list=a,b nested=\{"k":1\}$/.test(l)));
});
