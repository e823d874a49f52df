// Reading a blocklist folder into a RuleSet. Files that did not change since `previous` are
// reused as they are; a file that cannot be read keeps its previous rules (or is left out
// at first load), so one bad file never empties the rule set.
import { existsSync, statSync, type Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileKind, mayBeAppend, readAppended, readListFile, type ListFile, type ReadOptions } from './list-file.js';
import { RuleSet, type FileAppend } from './ruleset.js';
import { runAll, runSliced, SLICE_MS } from './slices.js';

export interface LoadReport {
  ruleSet: RuleSet;
  /** Files read and parsed this time (not reused; of an appended file, the new lines alone): their invalid lines are news. */
  parsed: ListFile[];
  reused: number;
  /** Files of which only an append was read; with `incremental`, only their new rules were placed. */
  appended: number;
  /** The rule set is the previous one plus appended rules (nothing removed): `added` is exact. */
  incremental: boolean;
  /** Unique names added (exact when incremental). */
  added: number;
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

/** Larger files read at most this many at a time (small ones are read synchronously, see list-file.ts). */
export const FILE_CONCURRENCY = 32;

/** `work` on every item, at most `limit` at a time; results in the items' order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface LoadOptions extends ReadOptions {
  extra?: readonly ExtraList[];
  /**
   * The rule set in force (a reload). When the folder differs from it only by lines appended
   * to files, the new set is built from it by placing the new rules alone.
   */
  previousRules?: RuleSet;
  /**
   * The names of the folder's entries that may have changed (from the watcher). A file of
   * the folder not named here, read before and complete, is reused without a stat.
   * Absent: every file is stat'd.
   */
  changedNames?: ReadonlySet<string>;
}

/**
 * Reads the folder into a new RuleSet. `previous` (a reload) lends the files that did not
 * change, the part already read of files that grew by an append, and the rules of files that
 * cannot be read now. With `sliced`, parsing and building give the event loop a turn every
 * few ms.
 */
export async function loadBlocklists(dir: string, previous: ReadonlyMap<string, ListFile> = new Map(),
  options: LoadOptions = {}): Promise<LoadReport> {
  const started = performance.now();
  const scan = await scanFolder(dir);
  const entries: { path: string; reason?: string }[] = [...scan.paths.map((path) => ({ path })), ...scan.skipped];
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // Lists from outside the folder come after it, in the order given.
  const extra = options.extra ?? [];
  const standby = new Set(extra.filter((e) => e.standby).map((e) => e.path));
  entries.push(...extra.map((e) => ({ path: e.path })));
  // Every file is stat'd first, synchronously, a slice at a time: a stat from the page cache
  // takes microseconds, a trip through the thread pool ten times that (20,000 files: 0.1 s
  // against 0.5-1 s). Most files of a reload did not change and are settled by their stat.
  const infos = new Array<Stats | Error | undefined>(entries.length);
  const folderEntries = entries.length - extra.length;
  const unchanged = (i: number): boolean => {
    if (options.changedNames === undefined || i >= folderEntries) return false;
    const old = previous.get(entries[i]!.path);
    return old !== undefined && !old.partial && !options.changedNames.has(basename(entries[i]!.path));
  };
  function* statAll(): Generator<void> {
    for (let i = 0; i < entries.length; i++) {
      if ((i & 63) === 63) yield;
      if (entries[i]!.reason !== undefined || unchanged(i)) continue;
      try {
        infos[i] = statSync(entries[i]!.path);
      } catch (err) {
        infos[i] = err as Error;
      }
    }
  }
  if (options.sliced) await runSliced(statAll());
  else runAll(statAll());
  type Outcome = { file?: ListFile; parsed?: ListFile; reused?: true; appendedFrom?: ListFile; failed?: LoadReport['failed'][number] };
  // Small files are read synchronously (list-file.ts): during a reload the event loop still gets a turn every slice.
  let due = performance.now() + SLICE_MS;
  const outcomes = await mapBounded(entries, FILE_CONCURRENCY, async ({ path, reason }, index): Promise<Outcome> => {
    const old = previous.get(path);
    if (reason !== undefined) {
      // Named in the log like a file that cannot be read; one that was a list before keeps its rules.
      return { file: old, failed: { path, reason, keptPrevious: old !== undefined } };
    }
    if (unchanged(index)) return { file: old, reused: true };
    try {
      const known = infos[index];
      if (known instanceof Error) throw known;
      const info: Stats = known ?? await stat(path);
      if (old !== undefined && !old.partial && old.mtimeMs === info.mtimeMs && old.size === info.size) return { file: old, reused: true };
      if (options.sliced && performance.now() >= due) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        due = performance.now() + SLICE_MS;
      }
      if (old !== undefined && mayBeAppend(old, info)) {
        const read = await readAppended(path, old, options);
        if (read !== null) return { file: read.file, parsed: read.added, appendedFrom: old };
      }
      const file = await readListFile(path, { ...options, previous: old });
      return { file, parsed: file };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { file: old, failed: { path, reason: code ?? (err as Error).message, keptPrevious: old !== undefined } };
    }
  });
  const files: ListFile[] = [];
  const parsed: ListFile[] = [];
  const failed: LoadReport['failed'] = [];
  const appendedFrom = new Map<ListFile, ListFile>();
  let reused = 0;
  // A file that turns standby or back changes which bundles block: then the set is built whole (rare).
  let standbyChanged = false;
  for (const o of outcomes) {
    if (o.file !== undefined) {
      if ((o.file.standby === true) !== standby.has(o.file.path)) standbyChanged = true;
      o.file.standby = standby.has(o.file.path);
      files.push(o.file);
    }
    if (o.parsed !== undefined) parsed.push(o.parsed);
    if (o.failed !== undefined) failed.push(o.failed);
    if (o.reused) reused++;
    if (o.appendedFrom !== undefined && o.file !== undefined) appendedFrom.set(o.file, o.appendedFrom);
  }
  const appends = standbyChanged ? null : appendsOnly(options.previousRules, files, appendedFrom);
  let ruleSet: RuleSet;
  if (appends !== null && options.previousRules !== undefined) ruleSet = await RuleSet.extend(options.previousRules, files, appends);
  else ruleSet = options.sliced ? await RuleSet.build(files) : new RuleSet(files);
  const added = appends !== null && options.previousRules !== undefined ? ruleSet.uniqueNames - options.previousRules.uniqueNames : 0;
  return {
    ruleSet, parsed, reused, failed, appended: appendedFrom.size, incremental: appends !== null, added,
    ms: Math.round(performance.now() - started),
  };
}

/**
 * Where `files` differ from the files of `before` only by appends (the same files, in the
 * same order): the new rules of each; else null (a full build).
 */
function appendsOnly(before: RuleSet | undefined, files: readonly ListFile[], appendedFrom: ReadonlyMap<ListFile, ListFile>): FileAppend[] | null {
  if (before === undefined || before.files.length !== files.length || appendedFrom.size === 0) return null;
  const appends: FileAppend[] = [];
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    const was = appendedFrom.get(file);
    if (was === undefined) {
      if (before.files[i] !== file) return null;
      continue;
    }
    if (before.files[i] !== was) return null;
    appends.push({ fileIndex: i, from: was.lines.length });
  }
  return appends;
}
