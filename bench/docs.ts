// Putting a full run's tables into docs/performance.md, between two markers, so that the
// page's prose stays as written and the figures are the benchmark's own.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** docs/performance.md of this repository (this file runs from dist-bench/bench/). */
export const DOCS = join(import.meta.dirname, '..', '..', 'docs', 'performance.md');
export const DOCS_START = '<!-- bench:start (written by npm run bench) -->';
export const DOCS_END = '<!-- bench:end -->';

/** Puts a full run's tables between the markers of docs/performance.md; says what it did. */
export function writeDocs(tables: string, file = DOCS): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return `(${file} not found: tables only in bench-results.md)`;
  }
  const start = text.indexOf(DOCS_START);
  const end = text.indexOf(DOCS_END);
  if (start < 0 || end < start) return `(${file} has no "${DOCS_START}" ... "${DOCS_END}" markers: tables only in bench-results.md)`;
  // The run's own headings go one level down, under the page's "Latest run".
  const body = tables.replace(/^(#{2,3}) /gm, '#$1 ');
  writeFileSync(file, `${text.slice(0, start + DOCS_START.length)}\n\n${body}\n${text.slice(end)}`);
  return `(written to ${file}: review and commit it)`;
}
