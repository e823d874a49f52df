// The benchmark puts a full run's tables into docs/performance.md between two markers
// (bench/docs.ts): the page's prose stays, the tables of the previous run go.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DOCS_END, DOCS_START, writeDocs } from '../../bench/docs.js';

t.test('the tables replace what is between the markers, headings one level down', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-docs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'performance.md');
  const before = `# Performance\n\nProse.\n\n## Latest run\n\n${DOCS_START}\nNo run yet.\n${DOCS_END}\n\n## Earlier runs\n\nOld prose.\n`;
  writeFileSync(file, before);
  t.match(writeDocs('## Benchmark (first)\n\n### Throughput\n\n| a |\n', file), /written to/);
  t.equal(readFileSync(file, 'utf8'), `# Performance\n\nProse.\n\n## Latest run\n\n${DOCS_START}\n\n### Benchmark (first)\n\n#### Throughput\n\n| a |\n\n${DOCS_END}\n\n## Earlier runs\n\nOld prose.\n`);
  writeDocs('## Benchmark (second)\n', file);
  const text = readFileSync(file, 'utf8');
  t.notMatch(text, /first/, 'the previous run is gone');
  t.match(text, /### Benchmark \(second\)\n\n<!-- bench:end -->\n\n## Earlier runs\n\nOld prose.\n$/, 'the rest stays');
});

t.test('a page without the markers, or no page, is left alone and says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-docs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'performance.md');
  writeFileSync(file, '# Performance\n');
  t.match(writeDocs('## x\n', file), /has no .* markers/);
  t.equal(readFileSync(file, 'utf8'), '# Performance\n');
  t.match(writeDocs('## x\n', join(dir, 'missing.md')), /not found/);
});

t.test('the shipped page has the markers', async (t) => {
  const text = readFileSync(new URL('../../docs/performance.md', import.meta.url), 'utf8');
  t.ok(text.indexOf(DOCS_START) >= 0 && text.indexOf(DOCS_END) > text.indexOf(DOCS_START));
});
