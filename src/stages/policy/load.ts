// Reading a blocklist folder into a RuleSet. Files that did not change since `previous` are
// reused as they are; a file that cannot be read keeps its previous rules (or is left out
// at first load), so one bad file never empties the rule set.
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileKind, readListFile, type ListFile, type ReadOptions } from './list-file.js';
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
  return (await scanFolder(dir)).paths;
}

export interface FolderScan {
  /** Regular files (or symlinks to them) named *.txt, sorted. */
  paths: string[];
  /** *.txt entries that are not regular files (FIFO, directory, device, broken symlink), and what they are. */
  skipped: { path: string; reason: string }[];
}

/** Looks at the folder's entries without opening any of them: a FIFO would block a read, /dev/zero never end. */
export async function scanFolder(dir: string): Promise<FolderScan> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? 'create it or pass --blocklists DIR' : code === 'EACCES' ? 'make it readable by the server' : 'check the path';
    throw new FolderError(`cannot read blocklist folder ${dir}: ${code ?? (err as Error).message}; ${hint}`);
  }
  const paths: string[] = [];
  const skipped: FolderScan['skipped'] = [];
  for (const e of entries) {
    if (!e.name.endsWith('.txt') || e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    if (e.isFile()) {
      paths.push(path);
    } else if (e.isSymbolicLink()) {
      const target = await stat(path).catch((err: NodeJS.ErrnoException) => err);
      if (target instanceof Error) skipped.push({ path, reason: `a symlink that cannot be followed (${target.code ?? target.message})` });
      else if (target.isFile()) paths.push(path);
      else skipped.push({ path, reason: `a symlink to ${fileKind(target)}, not a regular file` });
    } else {
      // A FIFO, a directory, a device; or a file system that does not say (then stat does).
      const info = await stat(path).catch(() => null);
      if (info?.isFile()) paths.push(path);
      else skipped.push({ path, reason: info === null ? 'not a regular file' : `${fileKind(info)}, not a regular file` });
    }
  }
  return { paths: paths.sort(), skipped };
}

/**
 * A list file from outside the folder's top level: a stored subscription (blocks like an
 * enabled file) or a bundle in available/ that a `block` line names (standby: it blocks
 * only for the groups that list it).
 */
export interface ExtraList {
  path: string;
  standby: boolean;
}

/** available/NAME.txt for each named bundle that exists there and is not enabled: what `block` lines need loaded. */
export function standbyLists(dir: string, bundles: Iterable<string>): ExtraList[] {
  const out: ExtraList[] = [];
  for (const name of new Set([...bundles].map((b) => b.toLowerCase()))) {
    const path = join(dir, 'available', `${name}.txt`);
    if (!existsSync(join(dir, `${name}.txt`)) && existsSync(path)) out.push({ path, standby: true });
  }
  return out;
}

/**
 * Reads the folder into a new RuleSet. `previous` (a reload) lends the files that did not
 * change, and the rules of files that cannot be read now. With `sliced`, parsing and
 * building give the event loop a turn every few ms.
 */
export async function loadBlocklists(dir: string, previous: ReadonlyMap<string, ListFile> = new Map(),
  options: ReadOptions & { extra?: readonly ExtraList[] } = {}): Promise<LoadReport> {
  const started = performance.now();
  const scan = await scanFolder(dir);
  const entries: { path: string; reason?: string }[] = [...scan.paths.map((path) => ({ path })), ...scan.skipped];
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // Lists from outside the folder come after it, in the order given.
  const extra = options.extra ?? [];
  const standby = new Set(extra.filter((e) => e.standby).map((e) => e.path));
  entries.push(...extra.map((e) => ({ path: e.path })));
  const files: ListFile[] = [];
  const parsed: ListFile[] = [];
  const failed: LoadReport['failed'] = [];
  let reused = 0;
  for (const { path, reason } of entries) {
    const old = previous.get(path);
    if (reason !== undefined) {
      // Named in the log like a file that cannot be read; one that was a list before keeps its rules.
      failed.push({ path, reason, keptPrevious: old !== undefined });
      if (old !== undefined) files.push(old);
      continue;
    }
    try {
      const info = await stat(path);
      if (old !== undefined && !old.partial && old.mtimeMs === info.mtimeMs && old.size === info.size) {
        old.standby = standby.has(path);
        files.push(old);
        reused++;
        continue;
      }
      const file = await readListFile(path, { ...options, previous: old });
      file.standby = standby.has(path);
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
