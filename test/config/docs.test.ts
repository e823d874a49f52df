// The README's options block and the manual pages are made from the declarations: these
// fail when someone edits an option and forgets `npm run docs`, or writes a page that
// mandoc, groff or man would complain about.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { manSinkhole, manSinkholeConf, readmeBlock, README_END, README_START } from '../../src/config/docs.js';
import { SERVER_OPTIONS } from '../../src/config/config.js';
import { COMMANDS, documented } from '../../src/main/commands/index.js';

const ROOT = join(import.meta.dirname, '..', '..');
const PAGES = { 'sinkhole.8': manSinkhole(COMMANDS.map(documented)), 'sinkhole.conf.5': manSinkholeConf() };
const inCi = process.env.CI === 'true';
const STALE = 'stale: run "npm run docs" and commit the result';

t.test('README.md carries the options block exactly as the declarations make it', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  t.ok(start >= 0 && end > start, 'the markers are there');
  t.equal(readme.slice(start + README_START.length, end), `\n${readmeBlock(COMMANDS.map(documented))}\n`, STALE);
  for (const o of SERVER_OPTIONS) t.match(readme, `| \`--${o.name}`, `--${o.name} has a row`);
  for (const c of COMMANDS) t.match(readme, `sinkhole ${c.name}`, `${c.name} is listed`);
});

t.test('docs/man pages are exactly what the declarations make', async (t) => {
  for (const [name, text] of Object.entries(PAGES)) {
    t.equal(readFileSync(join(ROOT, 'docs', 'man', name), 'utf8'), text, `${name}: ${STALE}`);
  }
  const page8 = PAGES['sinkhole.8'];
  for (const o of SERVER_OPTIONS) t.match(page8, `.It Fl \\-${o.name}`, `sinkhole(8) documents --${o.name}`);
  for (const c of COMMANDS) t.match(page8, `.It Cm ${c.name}`, `sinkhole(8) documents ${c.name}`);
  for (const o of SERVER_OPTIONS.filter((o) => o.inFile)) t.match(PAGES['sinkhole.conf.5'], `.It Ic ${o.name}`, `sinkhole.conf(5) documents ${o.name}`);
  t.notMatch(PAGES['sinkhole.conf.5'], '.It Ic config', 'config is not a setting of the file');
});

function tool(name: string): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
  if (!found) t.ok(!inCi, `${name} is installed in CI`);
  return found;
}

t.test('mandoc -T lint: no warning, and no style remark but the cross-references this machine cannot resolve', async (t) => {
  if (!tool('mandoc')) return;
  for (const name of Object.keys(PAGES)) {
    const path = join(ROOT, 'docs', 'man', name);
    const warnings = spawnSync('mandoc', ['-T', 'lint', '-W', 'warning', path], { encoding: 'utf8' });
    t.equal(warnings.stdout + warnings.stderr, '', `${name}: mandoc -T lint -W warning says nothing`);
    t.equal(warnings.status, 0);
    // The style level also looks up every .Xr in this machine's manual database.
    const style = spawnSync('mandoc', ['-T', 'lint', path], { encoding: 'utf8' });
    const remarks = (style.stdout + style.stderr).split('\n')
      .filter((l) => l !== '' && !/STYLE: referenced manual not found|mandoc\.db/.test(l));
    t.same(remarks, [], `${name}: no style remark`);
  }
});

t.test('groff -ww renders both pages without a warning, and man -l renders them', async (t) => {
  if (tool('groff')) {
    for (const name of Object.keys(PAGES)) {
      const r = spawnSync('groff', ['-ww', '-mandoc', '-Tutf8', '-z', join(ROOT, 'docs', 'man', name)], { encoding: 'utf8' });
      t.equal(r.status, 0);
      t.equal(r.stderr, '', `${name}: groff -ww says nothing`);
    }
  }
  if (!tool('man')) return;
  const r8 = spawnSync('man', ['-l', join(ROOT, 'docs', 'man', 'sinkhole.8')], { encoding: 'utf8', env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
  t.equal(r8.status, 0, 'man -l sinkhole.8');
  t.match(r8.stdout, /SINKHOLE\(8\)/);
  t.match(r8.stdout, /sinkhole check NAME \[options\]/, 'the synopsis');
  t.match(r8.stdout, /--cache-size N/);
  const r5 = spawnSync('man', ['-l', join(ROOT, 'docs', 'man', 'sinkhole.conf.5')], { encoding: 'utf8', env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
  t.equal(r5.status, 0, 'man -l sinkhole.conf.5');
  t.match(r5.stdout, /SINKHOLE\.CONF\(5\)/);
  t.match(r5.stdout, /upstream-timeout MS/);
});
