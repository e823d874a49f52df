// Live reload of the blocklist folder. The folder is watched (fs.watch, inotify on Linux);
// a burst of changes is folded into one reload (debounce), and a change that arrives during
// a reload causes another one after it. A stat-based poll backs the watcher up, and takes
// over when the watcher fails (inotify limits) or the folder disappears. SIGHUP and the
// admin API trigger a reload at once.
//
// A reload builds the new rule set beside the old one, in time slices so that queries keep
// being answered, and swaps it in with one assignment. Files that did not change are
// reused; a file that cannot be read keeps its previous rules. The DNS cache is not touched:
// rules are checked before the cache, so a newly blocked name is blocked at once.
import { statSync, watch } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../observe/log.js';
import type { ListFile } from './list-file.js';
import { loadBlocklists, type ExtraList, type LoadReport } from './load.js';
import type { RuleSet } from './ruleset.js';
import { runSliced } from './slices.js';

/** Logs what a load found: one line per newly read file, one per skipped line, one per failure. */
export function logLoadProblems(log: Logger, report: LoadReport): void {
  for (const file of report.parsed) {
    for (const bad of file.invalid) {
      log.warn({ where: `${file.path}:${bad.line}`, text: bad.text, reason: bad.reason }, `invalid rule skipped: ${file.path}:${bad.line}`);
    }
    if (file.invalidCount > file.invalid.length) {
      log.warn({ file: file.path, more: file.invalidCount - file.invalid.length }, 'more invalid rules skipped in this file, not listed');
    }
    for (const line of file.latin1Lines) {
      log.warn({ where: `${file.path}:${line}` }, `line is not UTF-8, read as Latin-1: ${file.path}:${line} (save the file as UTF-8)`);
    }
    if (file.latin1Count > file.latin1Lines.length) {
      log.warn({ file: file.path, more: file.latin1Count - file.latin1Lines.length }, 'more lines not UTF-8 in this file, read as Latin-1, not listed');
    }
  }
  for (const f of report.failed) {
    log.error({ file: f.path, reason: f.reason }, f.keptPrevious
      ? `cannot read ${f.path} (${f.reason}); keeping its previous rules`
      : `cannot read ${f.path} (${f.reason}); its rules are not loaded`);
  }
}

/** What the reloader needs of a folder watcher (an fs.FSWatcher has it). */
export interface FolderWatcher {
  on(event: 'error', listener: (err: Error) => void): unknown;
  close(): void;
}

/**
 * Starts watching `dir`, calling `onChange` on every change with the name of the entry that
 * changed (nothing when not known); may throw (inotify limits).
 */
export type WatchFolder = (dir: string, onChange: (name?: string | null) => void) => FolderWatcher;

/** fs.watch (inotify on Linux); it does not keep the process alive. */
export const watchWithFs: WatchFolder = (dir, onChange) => watch(dir, { persistent: false }, (_event, name) => onChange(name));

export interface TimerHandle {
  unref(): unknown;
}

/** The timers the reloader uses for its debounce and its polls: the global ones, or a test's clock. */
export interface ReloadTimers {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(callback: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

export const globalTimers: ReloadTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

export interface ReloadOptions {
  /** Quiet time after the last change before reloading. */
  debounceMs: number;
  /** Poll interval while the watcher works (a safety net) and while it does not. */
  safetyPollMs: number;
  fallbackPollMs: number;
  /** An unterminated last line in a file changed this recently is held back (being written). */
  partialLineMs: number;
  /** How the folder is watched; watchWithFs when not given. */
  watch?: WatchFolder;
  /** The debounce and poll timers; globalTimers when not given. */
  timers?: ReloadTimers;
}

export const DEFAULT_RELOAD_OPTIONS: ReloadOptions = { debounceMs: 250, safetyPollMs: 10_000, fallbackPollMs: 1_000, partialLineMs: 1_000 };

export interface ReloadResult {
  reason: string;
  ok: boolean;
  ms: number;
  /** List files that could not be read; absent when the folder itself could not be. */
  failedFiles?: number;
}

export class Reloader {
  private readonly watch: WatchFolder;
  private readonly timers: ReloadTimers;
  private watcher: FolderWatcher | null = null;
  private pollTimer: TimerHandle | null = null;
  private debounceTimer: TimerHandle | null = null;
  private running: Promise<void> | null = null;
  private pendingReason: string | null = null;
  private signature = '';
  /**
   * Entries the watcher named since the last reload began; null when anything may have
   * changed (a poll, SIGHUP, the API, an event without a name, a failed reload). The next
   * load stats only these of the files it had: 20,000 unchanged files need no stat each.
   */
  private changedNames: Set<string> | null = null;
  private polling = false;
  private stopped = false;
  /** Called after every reload attempt (statistics, tests). */
  onReload: ((result: ReloadResult) => void) | null = null;
  /** Lists from outside the folder to load with it (subscriptions, standby bundles named by block lines). */
  extraLists: (() => readonly ExtraList[]) | null = null;

  constructor(private readonly dir: string, private readonly log: Logger, private readonly getRules: () => RuleSet,
    private readonly setRules: (rules: RuleSet) => void, private readonly options: ReloadOptions = DEFAULT_RELOAD_OPTIONS) {
    this.watch = options.watch ?? watchWithFs;
    this.timers = options.timers ?? globalTimers;
  }

  async start(): Promise<void> {
    this.signature = await this.folderSignature();
    // From here the watcher names what changes (the files were read just before).
    this.changedNames = new Set();
    this.watchFolder();
  }

  /** Reload now (SIGHUP, API) — or right after the reload that is running. */
  trigger(reason: string): Promise<void> {
    this.pendingReason = reason;
    this.changedNames = null;
    return this.runPending();
  }

  /** A change was seen: reload once things have been quiet for a moment. */
  private changed(reason: string, name?: string | null): void {
    if (this.stopped) return;
    if (typeof name === 'string' && name.length > 0) this.changedNames?.add(name);
    else this.changedNames = null;
    this.pendingReason ??= reason;
    if (this.debounceTimer !== null) this.timers.clearTimeout(this.debounceTimer);
    this.debounceTimer = this.timers.setTimeout(() => {
      this.debounceTimer = null;
      void this.runPending();
    }, this.options.debounceMs);
  }

  private async runPending(): Promise<void> {
    while (this.running !== null) await this.running;
    const reason = this.pendingReason;
    if (reason === null || this.stopped) return;
    this.pendingReason = null;
    this.running = this.reload(reason).finally(() => {
      this.running = null;
    });
    await this.running;
    if (this.pendingReason !== null) await this.runPending();
  }

  private async reload(reason: string): Promise<void> {
    const started = performance.now();
    const before = this.getRules();
    const previous = new Map<string, ListFile>(before.files.map((f) => [f.path, f]));
    const changedNames = this.changedNames;
    this.changedNames = new Set();
    let report: LoadReport;
    try {
      report = await loadBlocklists(this.dir, previous, {
        sliced: true, holdPartialWithinMs: this.options.partialLineMs, extra: this.extraLists?.() ?? [], previousRules: before,
        ...(changedNames === null ? {} : { changedNames }),
      });
    } catch (err) {
      this.changedNames = null;
      this.log.error({ folder: this.dir, reason: (err as Error).message },
        'blocklist folder unreadable; keeping the current rules and polling until it is back');
      // A watcher on a folder that was removed or moved away sees nothing of its successor.
      this.watcher?.close();
      this.watcher = null;
      this.startPolling(this.options.fallbackPollMs);
      this.onReload?.({ reason, ok: false, ms: Math.round(performance.now() - started) });
      return;
    }
    const after = report.ruleSet;
    // Named before the swap: whoever sees the new rules answer can already find the lines
    // that were skipped or read as Latin-1 in the log.
    logLoadProblems(this.log, report);
    this.setRules(after);
    this.signature = await this.folderSignature();
    // An append adds names and removes none: counted as it was built, not by walking a million names twice.
    const added = report.incremental ? report.added : await after.countMissingFrom(before);
    const removed = report.incremental ? 0 : await before.countMissingFrom(after);
    const ms = Math.round(performance.now() - started);
    this.log.info({
      reason, files: after.files.length, read: report.parsed.length, appended: report.appended, incremental: report.incremental, added, removed,
      invalid: report.parsed.reduce((n, f) => n + f.invalidCount, 0), failed: report.failed.length,
      rules: after.nameRuleCount + after.ipRuleCount, ms,
    }, 'blocklists reloaded');
    this.onReload?.({ reason, ok: report.failed.length === 0, ms, failedFiles: report.failed.length });
    // A file still being written: look again once its last line may be complete.
    if (report.parsed.some((f) => f.partial)) this.changed('partial line');
    // The folder is back after it was gone: watch it again.
    if (this.polling && this.watcher === null) this.watchFolder();
  }

  private watchFolder(): void {
    try {
      this.watcher = this.watch(this.dir, (name) => this.changed('watch', name));
      this.watcher.on('error', (err) => this.watcherFailed(err));
      this.startPolling(this.options.safetyPollMs);
    } catch (err) {
      this.watcherFailed(err as Error);
    }
  }

  private watcherFailed(err: Error): void {
    this.log.warn({ folder: this.dir, reason: (err as NodeJS.ErrnoException).code ?? err.message },
      `cannot watch the blocklist folder; checking it every ${this.options.fallbackPollMs} ms instead`);
    this.watcher?.close();
    this.watcher = null;
    this.startPolling(this.options.fallbackPollMs);
  }

  private startPolling(intervalMs: number): void {
    if (this.pollTimer !== null) this.timers.clearInterval(this.pollTimer);
    this.polling = intervalMs === this.options.fallbackPollMs;
    this.pollTimer = this.timers.setInterval(() => void this.poll(), intervalMs);
    this.pollTimer.unref();
  }

  private async poll(): Promise<void> {
    const signature = await this.folderSignature();
    if (signature !== this.signature) {
      this.signature = signature;
      this.changed('poll');
    }
  }

  /**
   * Names, sizes and modification times of the folder's *.txt files: changes when they do.
   * Stat'd synchronously a slice at a time (see load.ts): 20,000 files in about 0.1 s.
   */
  private async folderSignature(): Promise<string> {
    try {
      const names = (await readdir(this.dir)).filter((n) => n.endsWith('.txt')).sort();
      const parts = new Array<string>(names.length);
      const dir = this.dir;
      function* statAll(): Generator<void> {
        for (let i = 0; i < names.length; i++) {
          if ((i & 63) === 63) yield;
          const n = names[i]!;
          const s = statSync(join(dir, n), { throwIfNoEntry: false });
          parts[i] = s === undefined ? `${n}:gone` : `${n}:${s.size}:${s.mtimeMs}`;
        }
      }
      await runSliced(statAll());
      return parts.join('|');
    } catch (err) {
      return `unreadable:${(err as NodeJS.ErrnoException).code ?? ''}`;
    }
  }

  close(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.pollTimer !== null) this.timers.clearInterval(this.pollTimer);
    if (this.debounceTimer !== null) this.timers.clearTimeout(this.debounceTimer);
  }
}
