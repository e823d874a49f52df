// Reading a blocklist folder into a RuleSet. Files that did not change since `previous` are
// reused as they are; a file that cannot be read keeps its previous rules (or is left out
// at first load), so one bad file never empties the rule set.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readListFile, type ListFile, type ReadOptions } from './list-file.js';
import { RuleSet } from './ruleset.js';

export interface LoadReport {
  ruleSet: RuleSet;
  /** Files read and parsed this time (not reused): their invalid lines are news. */
  parsed: ListFile[];
  reused: number;
  failed: { path: string; reason: string; keptPrevious: boolean }[];
  ms: number;
}

export class FolderError extends Error {}

/** The `*.txt` files directly in `dir`, sorted, so rule order (and "first rule wins") is stable. */
export async function listFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? 'create it or pass --blocklists DIR' : code === 'EACCES' ? 'make it readable by the server' : 'check the path';
    throw new FolderError(`cannot read blocklist folder ${dir}: ${code ?? (err as Error).message}; ${hint}`);
  }
  const names: string[] = [];
  for (const e of entries) {
    if (!e.name.endsWith('.txt') || e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    if (e.isFile() || (e.isSymbolicLink() && (await stat(path).catch(() => null))?.isFile())) names.push(path);
  }
  return names.sort();
}

/**
 * Reads the folder into a new RuleSet. `previous` (a reload) lends the files that did not
 * change, and the rules of files that cannot be read now. With `sliced`, parsing and
 * building give the event loop a turn every few ms.
 */
export async function loadBlocklists(dir: string, previous: ReadonlyMap<string, ListFile> = new Map(),
  options: ReadOptions = {}): Promise<LoadReport> {
  const started = performance.now();
  const paths = await listFiles(dir);
  const files: ListFile[] = [];
  const parsed: ListFile[] = [];
  const failed: LoadReport['failed'] = [];
  let reused = 0;
  for (const path of paths) {
    const old = previous.get(path);
    try {
      const info = await stat(path);
      if (old !== undefined && !old.partial && old.mtimeMs === info.mtimeMs && old.size === info.size) {
        files.push(old);
        reused++;
        continue;
      }
      const file = await readListFile(path, { ...options, previous: old });
      files.push(file);
      parsed.push(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      failed.push({ path, reason: code ?? (err as Error).message, keptPrevious: old !== undefined });
      if (old !== undefined) files.push(old);
    }
  }
  const ruleSet = options.sliced ? await RuleSet.build(files) : new RuleSet(files);
  return { ruleSet, parsed, reused, failed, ms: Math.round(performance.now() - started) };
}
