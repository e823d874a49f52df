// The README's "who tried" journal recipe, run against a log the real server wrote: it must
// count the folded `blocked (repeated)` lines, not only the first `blocked` line of each second.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { NODE_FLAGS } from '../../src/main/node-flags.js';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'main', 'cli.js');
const JOURNAL = 'journalctl -u sinkhole --since today -o cat';

t.test('the "who tried" recipe counts every blocked query, folded repeats included', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v jq']).status !== 0) {
    t.notOk(process.env.CI === 'true', 'jq is installed in CI');
    return;
  }
  // The recipe as the README gives it (every journalctl line that pipes into jq).
  const recipes = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').filter((l) => l.startsWith(`${JOURNAL} | jq`));
  t.ok(recipes.length >= 1, 'the README has the recipe');

  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'yahoo-messenger.txt'), '# Yahoo Messenger\nscs.msg.yahoo.com\nmsg.yahoo.com\n');
  writeFileSync(join(dir, 'msn-messenger.txt'), '# MSN\nmessenger.hotmail.com\n');
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.1' }] }));
  t.teardown(() => upstream.close());
  const port = await freePort();
  // What journald would store: the server's stdout, a pipe to a file.
  const logDir = mkdtempSync(join(tmpdir(), 'sinkhole-journal-log-'));
  t.teardown(() => rmSync(logDir, { recursive: true, force: true }));
  const logFile = join(logDir, 'journal.log');
  const fd = openSync(logFile, 'w');
  const server = spawn(process.execPath, [...NODE_FLAGS, CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', dir],
    { stdio: ['ignore', fd, 'inherit'] });
  closeSync(fd);
  t.teardown(() => server.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) => server.on('exit', () => resolve()));
  for (let i = 0; i < 600 && !readFileSync(logFile, 'utf8').includes('"msg":"ready"'); i++) await new Promise((r) => setTimeout(r, 50));

  // 127.0.0.1: 5 + 2 yahoo queries (two names, so two lines, four folded repeats); 127.0.0.2: 3.
  const blocked = async (name: string, from: string, times: number) => {
    for (let i = 0; i < times; i++) t.equal((await ask(port, name, T.A, { from })).answers[0]?.text, '127.0.0.1');
  };
  await blocked('scs.msg.yahoo.com', '127.0.0.1', 5);
  await blocked('msg.yahoo.com', '127.0.0.1', 2);
  await blocked('web.msg.yahoo.com', '127.0.0.2', 3);
  await blocked('gateway.messenger.hotmail.com', '127.0.0.2', 4);
  await new Promise((r) => setTimeout(r, 1500)); // the repeats are written at the end of the second
  server.kill('SIGTERM');
  await exited;
  const log = readFileSync(logFile, 'utf8');
  t.match(log, /"client":"127\.0\.0\.1","qname":"scs\.msg\.yahoo\.com".*"repeats":4,"seconds":1,"msg":"blocked \(repeated\)"/, 'the log has folded repeats');

  for (const recipe of recipes) {
    const run = spawnSync('bash', ['-o', 'pipefail', '-c', recipe.replace(JOURNAL, `cat ${logFile}`)], { encoding: 'utf8' });
    t.equal(run.status, 0, run.stderr);
    t.equal(run.stdout, '7 127.0.0.1\n3 127.0.0.2\n', `every query counted: ${recipe}`);
  }
  // The old recipe (first lines only) gives 2 and 1: the check above can fail.
  const old = spawnSync('bash', ['-c', `jq -r 'select(.msg=="blocked" and .bundle=="yahoo-messenger") | .client' ${logFile} | sort | uniq -c`], { encoding: 'utf8' });
  t.match(old.stdout, /^\s+2 127\.0\.0\.1\n\s+1 127\.0\.0\.2\n$/);
});
