// Reading an appended-to file from where it ended: only the new lines are parsed and only the
// new rules placed, and the result is the rule set a full load would give. Anything that is
// not a pure append (a rewrite in place, a truncation, a replaced file, a last line without a
// newline) is read whole.
import { appendFileSync, closeSync, mkdtempSync, openSync, renameSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { bundleCount, bundleId } from '../../../src/stages/policy/bundle-ids.js';
import type { ListFile } from '../../../src/stages/policy/list-file.js';
import { loadBlocklists, type LoadReport } from '../../../src/stages/policy/load.js';
import { ruleOf, type RuleSet } from '../../../src/stages/policy/ruleset.js';
import { mustKey } from '../../../src/wire/names.js';

function folder(t: Test, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-append-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** A reload as the Reloader does it: the files and the rule set in force lent to the next load. */
async function reload(dir: string, before: RuleSet, holdPartialWithinMs?: number): Promise<LoadReport> {
  const previous = new Map<string, ListFile>(before.files.map((f) => [f.path, f]));
  return loadBlocklists(dir, previous, { sliced: true, previousRules: before, ...(holdPartialWithinMs === undefined ? {} : { holdPartialWithinMs }) });
}

/** What the set says about `name`: the deciding rule's file:line and kind, or 'none'. */
function verdict(rules: RuleSet, name: string): string {
  const m = rules.match(mustKey(name));
  if (m < 0) return 'none';
  const r = rules.describe(ruleOf(m));
  return `${r.file.replace(/.*\//, '')}:${r.line}:${r.allow ? 'allow' : 'block'}:${r.rule}`;
}

/** The set must agree with a fresh full load of the same folder on every name asked. */
async function sameAsFullLoad(t: Test, dir: string, rules: RuleSet, names: string[]): Promise<void> {
  const fresh = (await loadBlocklists(dir)).ruleSet;
  t.same(names.map((n) => verdict(rules, n)), names.map((n) => verdict(fresh, n)), 'the same verdicts as a full load');
  t.equal(rules.nameRuleCount, fresh.nameRuleCount, 'the same number of rules');
  t.equal(rules.uniqueNames, fresh.uniqueNames, 'the same number of names');
}

t.test('an append is read incrementally: new rules, right line numbers, invalid lines named once', async (t) => {
  const dir = folder(t, { 'a.txt': '# list a\none.example\ntwo.example\n', 'b.txt': 'b.example\nshared.example\n' });
  const first = await loadBlocklists(dir);
  appendFileSync(join(dir, 'a.txt'), 'three.example\nnot a rule!!\nshared.example\n@@||one.example^\n');
  const r = await reload(dir, first.ruleSet);
  t.ok(r.incremental, 'built from the previous set');
  t.equal(r.appended, 1);
  t.equal(r.added, 1, 'one new name (shared.example was known)');
  t.equal(r.parsed.length, 1);
  t.same(r.parsed[0]!.invalid.map((i) => i.line), [5], 'the invalid line is named with its line in the whole file');
  t.equal(r.ruleSet.files[0]!.invalidCount, 1);
  t.equal(verdict(r.ruleSet, 'www.three.example'), 'a.txt:4:block:three.example');
  // A name in a later file appended to an earlier one: the earlier file's rule comes first, as at a full load.
  t.equal(verdict(r.ruleSet, 'shared.example'), 'a.txt:6:block:shared.example');
  t.equal(verdict(r.ruleSet, 'one.example'), 'a.txt:7:allow:one.example', 'an appended allow rule beats the block rule');
  t.equal(verdict(first.ruleSet, 'three.example'), 'none', 'the set in force before is untouched');
  t.equal(verdict(first.ruleSet, 'one.example'), 'a.txt:2:block:one.example');
  await sameAsFullLoad(t, dir, r.ruleSet, ['one.example', 'two.example', 'three.example', 'shared.example', 'b.example', 'x.example']);

  appendFileSync(join(dir, 'a.txt'), 'four.example\n');
  const again = await reload(dir, r.ruleSet);
  t.ok(again.incremental, 'a second append is incremental too');
  t.equal(verdict(again.ruleSet, 'four.example'), 'a.txt:8:block:four.example');
  t.same(again.parsed[0]!.invalid, [], 'the old invalid line is not reported again');
  await sameAsFullLoad(t, dir, again.ruleSet, ['one.example', 'three.example', 'four.example', 'shared.example']);
});

t.test('not an append: read whole', async (t) => {
  const dir = folder(t, { 'a.txt': 'one.example\ntwo.example\n', 'b.txt': 'b.example\n' });
  const path = join(dir, 'a.txt');
  let rules = (await loadBlocklists(dir)).ruleSet;

  // Rewritten in place, longer: the same inode, but the first line is gone.
  writeFileSync(path, 'two.example\nthree.example\nfour.example\n');
  let r = await reload(dir, rules);
  t.notOk(r.incremental, 'a rewrite in place that grew');
  t.equal(verdict(r.ruleSet, 'one.example'), 'none', 'the removed line is gone');
  t.equal(verdict(r.ruleSet, 'four.example'), 'a.txt:3:block:four.example');
  rules = r.ruleSet;

  truncateSync(path, 'two.example\n'.length);
  r = await reload(dir, rules);
  t.notOk(r.incremental, 'a truncation');
  t.equal(verdict(r.ruleSet, 'three.example'), 'none');
  rules = r.ruleSet;

  // Replaced by rename (how editors save), with the old text plus a line.
  writeFileSync(join(dir, '.a.tmp'), 'two.example\nfive.example\n');
  renameSync(join(dir, '.a.tmp'), path);
  r = await reload(dir, rules);
  t.notOk(r.incremental, 'a file replaced by rename');
  t.equal(verdict(r.ruleSet, 'five.example'), 'a.txt:2:block:five.example');
  rules = r.ruleSet;

  // A file added beside an append: built whole.
  appendFileSync(path, 'six.example\n');
  writeFileSync(join(dir, 'c.txt'), 'c.example\n');
  r = await reload(dir, rules);
  t.notOk(r.incremental, 'a new file as well');
  t.equal(r.appended, 1, 'the appended file itself was still read from where it ended');
  await sameAsFullLoad(t, dir, r.ruleSet, ['two.example', 'five.example', 'six.example', 'c.example', 'b.example']);
});

t.test('a last line without a newline is continued by an append: read whole', async (t) => {
  const dir = folder(t, { 'a.txt': 'one.example\nlast.example' });
  const first = await loadBlocklists(dir);
  t.equal(verdict(first.ruleSet, 'last.example'), 'a.txt:2:block:last.example');
  appendFileSync(join(dir, 'a.txt'), 'tail.example\n');
  const r = await reload(dir, first.ruleSet);
  t.notOk(r.incremental);
  t.equal(verdict(r.ruleSet, 'last.example'), 'none', 'the line is now last.exampletail.example');
  t.equal(verdict(r.ruleSet, 'last.exampletail.example'), 'a.txt:2:block:last.exampletail.example');
});

t.test('a half-written line held back is completed by the next append', async (t) => {
  const dir = folder(t, { 'a.txt': 'one.example\n' });
  const first = await loadBlocklists(dir);
  appendFileSync(join(dir, 'a.txt'), 'two.example\nhalf.exa');
  const r = await reload(dir, first.ruleSet, 60_000);
  t.ok(r.incremental);
  t.ok(r.ruleSet.files[0]!.partial, 'held back');
  t.equal(verdict(r.ruleSet, 'two.example'), 'a.txt:2:block:two.example');
  t.equal(verdict(r.ruleSet, 'half.exa'), 'none');
  appendFileSync(join(dir, 'a.txt'), 'mple\n');
  const done = await reload(dir, r.ruleSet, 60_000);
  t.ok(done.incremental);
  t.notOk(done.ruleSet.files[0]!.partial);
  t.equal(verdict(done.ruleSet, 'half.example'), 'a.txt:3:block:half.example');
  await sameAsFullLoad(t, dir, done.ruleSet, ['one.example', 'two.example', 'half.example', 'half.exa']);
});

t.test('appends to a big file keep every rule and the groups\' chains', async (t) => {
  const names = Array.from({ length: 50_000 }, (_, i) => `n${i}.big.example`);
  const dir = folder(t, { 'a.txt': names.join('\n') + '\n', 'z.txt': 'n7.big.example\nonly-z.example\n' });
  let rules = (await loadBlocklists(dir)).ruleSet;
  const added: string[] = [];
  for (let round = 0; round < 3; round++) {
    const more = Array.from({ length: 5_000 }, (_, i) => `m${round}-${i}.new.example`);
    added.push(...more);
    appendFileSync(join(dir, 'z.txt'), more.join('\n') + '\nn1.big.example\n');
    const r = await reload(dir, rules);
    t.ok(r.incremental, `round ${round}`);
    rules = r.ruleSet;
  }
  const sample = [...names.filter((_, i) => i % 997 === 0), ...added.filter((_, i) => i % 331 === 0), 'n7.big.example', 'n1.big.example', 'only-z.example'];
  await sameAsFullLoad(t, dir, rules, sample);
  t.same(rules.rulesCovering(mustKey('n1.big.example')).map((r) => `${r.file.replace(/.*\//, '')}:${r.line}`),
    ['a.txt:2', 'z.txt:5003', 'z.txt:10004', 'z.txt:15005']);
  // A group blocked by bundle z alone still finds z's rules for a name a.txt has first (the chain its walk follows).
  const active = new Uint8Array(bundleCount());
  active[bundleId('z')] = 1;
  const m = rules.matchFor(mustKey('n1.big.example'), active, 0);
  t.equal(m >= 0 && rules.describe(ruleOf(m)).file.endsWith('z.txt'), true, 'a rule of z.txt found for a group of bundle z');
});

t.test('one version extended twice: each extension keeps its own appended rules', async (t) => {
  // Appends write after the last rule of the arrays they share with the version they extend;
  // a second extension of the same version (a reload built and not swapped in, then another)
  // must not write over the first's rules.
  const names = Array.from({ length: 5_000 }, (_, i) => `n${i}.big.example`);
  const text = names.join('\n') + '\n';
  const dir = folder(t, { 'a.txt': text, 'z.txt': 'z.example\n' });
  const path = join(dir, 'a.txt');
  const first = await loadBlocklists(dir);
  appendFileSync(path, 'left.example\nn3.big.example\n');
  const left = await reload(dir, first.ruleSet);
  // The same version again, with other lines after it: truncated back, then appended to.
  truncateSync(path, Buffer.byteLength(text));
  appendFileSync(path, '@@||n5.big.example^\nright.example\n');
  const right = await reload(dir, first.ruleSet);
  t.ok(left.incremental && right.incremental, 'both read as appends to the first version');
  // The first extension wrote its rows after the first version's, in the same buffer (no copy
  // of a big file's arrays per append); the second could not, and copied.
  t.equal(left.ruleSet.files[0]!.lines.buffer, first.ruleSet.files[0]!.lines.buffer, 'the first extension appended in place');
  t.not(right.ruleSet.files[0]!.lines.buffer, first.ruleSet.files[0]!.lines.buffer, 'the second one copied');
  t.equal(verdict(left.ruleSet, 'left.example'), 'a.txt:5001:block:left.example');
  t.equal(verdict(left.ruleSet, 'right.example'), 'none');
  t.equal(verdict(left.ruleSet, 'n5.big.example'), 'a.txt:6:block:n5.big.example', 'the first extension does not see the other\'s allow rule');
  t.same(left.ruleSet.rulesCovering(mustKey('n3.big.example')).map((r) => r.line), [4, 5002]);
  t.equal(verdict(right.ruleSet, 'right.example'), 'a.txt:5002:block:right.example');
  t.equal(verdict(right.ruleSet, 'left.example'), 'none');
  t.equal(verdict(right.ruleSet, 'n5.big.example'), 'a.txt:5001:allow:n5.big.example');
  t.equal(verdict(first.ruleSet, 'left.example'), 'none', 'the version extended is untouched');
  t.equal(verdict(first.ruleSet, 'n5.big.example'), 'a.txt:6:block:n5.big.example');
  await sameAsFullLoad(t, dir, right.ruleSet, ['left.example', 'right.example', 'n5.big.example', 'n3.big.example', 'z.example']);
});

t.test('the prefix check of a file read in chunks: appends, then a byte changed at its start, in its middle, in what was appended', async (t) => {
  // 32,768 lines of 16 bytes: 512 KiB, two of the 256 KiB chunks the check reads at a time.
  const lines = Array.from({ length: 32_768 }, (_, i) => `n${String(i).padStart(6, '0')}.example\n`);
  const text = lines.join('');
  t.equal(Buffer.byteLength(text), 512 * 1024);
  const dir = folder(t, { 'a.txt': text });
  const path = join(dir, 'a.txt');
  let rules = (await loadBlocklists(dir)).ruleSet;
  appendFileSync(path, 'first.example\n');
  let r = await reload(dir, rules);
  t.ok(r.incremental, 'an append at a chunk boundary');
  rules = r.ruleSet;
  appendFileSync(path, 'second.example\n');
  r = await reload(dir, rules);
  t.ok(r.incremental, 'an append after a partial chunk');
  t.equal(verdict(r.ruleSet, 'second.example'), 'a.txt:32770:block:second.example');
  rules = r.ruleSet;
  // One byte changed in place, each time somewhere else, with a line appended: read whole.
  for (const line of [3, 20_000, 32_769]) {
    const at = (line - 1) * 16;
    const fd = openSync(path, 'r+');
    writeSync(fd, 'm', at);
    closeSync(fd);
    appendFileSync(path, `after-${line}.example\n`);
    r = await reload(dir, rules);
    t.notOk(r.incremental, `a change on line ${line} is seen`);
    rules = r.ruleSet;
  }
  t.equal(verdict(rules, 'm000002.example'), 'a.txt:3:block:m000002.example');
  t.equal(verdict(rules, 'n000002.example'), 'none');
  t.equal(verdict(rules, 'mirst.example'), 'a.txt:32769:block:mirst.example');
  await sameAsFullLoad(t, dir, rules, ['m000002.example', 'm019999.example', 'mirst.example', 'second.example', 'after-3.example', 'n000001.example']);
});
