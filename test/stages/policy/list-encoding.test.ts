// Bad things in the blocklist folder lose no rules and are never silent: a line that is not
// UTF-8 is read as Latin-1 and named (at start and on reload); a FIFO, a directory or a
// symlink to /dev/zero named *.txt is named in the log and never opened; a file over the
// size limit is left out (or keeps its previous rules) with a message.
import { spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, constants, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { captureLogs, startSinkhole, writeLists, type TestServer } from '../../helpers/server.js';
import { ask } from '../../helpers/client.js';
import { T } from '../../helpers/dns.js';
import { startUpstream } from '../../helpers/upstream.js';
import { MAX_LIST_FILE_BYTES, parseListBytes } from '../../../src/stages/policy/list-file.js';
import { loadBlocklists } from '../../../src/stages/policy/load.js';
import { logLoadProblems } from '../../../src/stages/policy/reload.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');

async function blocked(s: TestServer, name: string): Promise<boolean> {
  return (await ask(s.port, name, T.A)).answers[0]?.text === '127.0.0.1';
}

async function within2s(s: TestServer, name: string): Promise<boolean> {
  for (const started = Date.now(); Date.now() - started < 2000; await sleep(50)) if (await blocked(s, name)) return true;
  return false;
}

async function serverOn(t: Test, dir: string): Promise<TestServer> {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.7' }] }));
  // Startup must not hang on anything in the folder: bounded here.
  let timer: NodeJS.Timeout | undefined;
  const s = await Promise.race([startSinkhole({ upstream: upstream.address, dir }),
    new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), 10_000); })]);
  clearTimeout(timer);
  if (s === null) throw new Error('the server did not start within 10 s');
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  return s;
}

t.test('a Latin-1 line is read as Latin-1 with a warning naming file:line; every other rule is kept', async (t) => {
  const dir = writeLists({});
  writeFileSync(join(dir, 'legacy.txt'), Buffer.concat([
    Buffer.from('first.example\n'),
    latin1('# Liste von Müller\n'),
    latin1('bücher.example\n'),
    Buffer.from('# ein UTF-8-Kommentar: Grüße\nlast.example\n'),
  ]));
  const s = await serverOn(t, dir);
  t.ok(await blocked(s, 'first.example'), 'the rule before the Latin-1 lines');
  t.ok(await blocked(s, 'last.example'), 'the rule after them');
  t.ok(await blocked(s, 'xn--bcher-kva.example'), 'the Latin-1 name itself, read as bücher.example');
  const warnings = s.logs.filter((l) => /not UTF-8/.test(String(l.msg)));
  t.same(warnings.map((l) => l.where), [`${dir}/legacy.txt:2`, `${dir}/legacy.txt:3`], 'each Latin-1 line named, the UTF-8 one not');
  t.equal(warnings[0]?.level, 40, 'as warnings');
  t.notOk(s.logs.some((l) => String(l.msg).startsWith('cannot read')), 'the file was not rejected');

  // On reload the same: a new file with a Latin-1 comment among its rules.
  writeFileSync(join(dir, 'added.txt'), Buffer.concat([Buffer.from('new1.example\n'), latin1('# café\n'), Buffer.from('new2.example\n')]));
  t.ok(await within2s(s, 'new2.example'), 'the new file\'s rules block after a reload');
  t.ok(await blocked(s, 'new1.example'));
  t.ok(s.logs.some((l) => l.where === `${dir}/added.txt:2` && /not UTF-8/.test(String(l.msg))), 'its Latin-1 line is named');
});

t.test('parsing: only the lines that are not UTF-8 are read as Latin-1; a UTF-8 file is untouched', async (t) => {
  const mixed = parseListBytes('/x/mixed.txt', Buffer.concat([latin1('a.example # é\n'), Buffer.from('b.example # é\n'), latin1('0.0.0.0 ç.example\n')]));
  t.same(mixed.keys.length, 3, 'three rules');
  t.same(mixed.latin1Lines, [1, 3], 'lines 1 and 3 are Latin-1; line 2 is UTF-8');
  const utf8 = parseListBytes('/x/utf8.txt', Buffer.from('grüße.example\n# é\n'));
  t.same([utf8.latin1Count, utf8.keys.length, utf8.invalidCount], [0, 1, 0], 'UTF-8 IDN and comments as before');
  const many = parseListBytes('/x/many.txt', Buffer.concat(Array.from({ length: 50 }, () => latin1('# é\n'))));
  t.same([many.latin1Lines.length, many.latin1Count], [20, 50], 'the first 20 named, all counted');
});

t.test('a FIFO, a directory and symlinks to /dev/zero or nowhere named *.txt: named in the log, never opened', async (t) => {
  const dir = writeLists({ 'good.txt': 'good.example\n' });
  const fifo = join(dir, 'pipe.txt');
  const made = spawnSync('mkfifo', [fifo]);
  if (made.error || made.status !== 0) {
    if (process.env.CI) t.fail('mkfifo is needed for this test');
    else t.comment('skipped: mkfifo not available');
    return;
  }
  mkdirSync(join(dir, 'folder.txt'));
  symlinkSync('/dev/zero', join(dir, 'zero.txt'));
  symlinkSync(join(dir, 'missing'), join(dir, 'dangling.txt'));
  const s = await serverOn(t, dir);
  t.ok(await blocked(s, 'good.example'), 'the good file is loaded');
  const named = (file: string) => s.logs.find((l) => l.file === join(dir, file) && String(l.msg).startsWith('cannot read'));
  t.match(named('pipe.txt'), { reason: 'a FIFO (named pipe), not a regular file' }, 'the FIFO is named');
  t.match(named('folder.txt'), { reason: 'a directory, not a regular file' }, 'the directory is named');
  t.match(named('zero.txt'), { reason: 'a symlink to a character device, not a regular file' }, 'the symlink to /dev/zero is named');
  t.match(named('dangling.txt'), { reason: /symlink that cannot be followed \(ENOENT\)/ }, 'the dangling symlink is named');
  // Nobody holds the FIFO open for reading: a non-blocking writer is told "no reader" (ENXIO).
  t.throws(() => closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)), { code: 'ENXIO' }, 'the FIFO was never opened');

  appendFileSync(join(dir, 'good.txt'), 'later.example\n');
  t.ok(await within2s(s, 'later.example'), 'reloads still work with them in the folder');
  t.throws(() => closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)), { code: 'ENXIO' }, 'nor opened on reload');
});

t.test('a file over the size limit is left out with a message, or keeps its previous rules', async (t) => {
  t.equal(MAX_LIST_FILE_BYTES, 64 * 1024 * 1024, 'the limit is 64 MiB by default');
  const dir = writeLists({ 'small.txt': 'small.example\n', 'big.txt': 'big.example\n' });
  const first = await loadBlocklists(dir, new Map(), { maxBytes: 1024 });
  t.equal(first.ruleSet.nameRuleCount, 2, 'both under the limit');
  writeFileSync(join(dir, 'big.txt'), Array.from({ length: 200 }, (_, i) => `big${i}.example`).join('\n') + '\n');
  const previous = new Map(first.ruleSet.files.map((f) => [f.path, f]));
  const again = await loadBlocklists(dir, previous, { maxBytes: 1024 });
  t.match(again.failed, [{ path: join(dir, 'big.txt'), reason: /^2\.\d KiB is over the 1\.0 KiB limit for one list file; split it$/, keptPrevious: true }]);
  t.equal(again.ruleSet.nameRuleCount, 2, 'its previous rule is kept, the small file read');
  const fresh = await loadBlocklists(dir, new Map(), { maxBytes: 1024 });
  t.equal(fresh.ruleSet.nameRuleCount, 1, 'at first load it is left out');
  const { output, logs } = captureLogs();
  logLoadProblems(output.log, fresh);
  t.match(logs, [{ level: 50, file: join(dir, 'big.txt'), msg: /^cannot read .*big\.txt \(2\.\d KiB is over the 1\.0 KiB limit for one list file; split it\); its rules are not loaded$/ }]);
});
