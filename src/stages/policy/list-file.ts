// One blocklist file, read and parsed: its name rules as keys with their line numbers, its
// answer-IP rules, and the lines it had to skip. Kept per file so that a reload can reuse
// the files that did not change and keep a file's old rules when it cannot be read.
import { isUtf8 } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Cidr } from './cidr.js';
import { parseRuleLine } from './rule-line.js';
import { withRoom } from './ruleset.js';
import { SLICE_MS, YIELD_EVERY } from './slices.js';

export interface InvalidLine {
  line: number;
  text: string;
  reason: string;
}

export interface ListFile {
  path: string;
  /** The file name without `.txt` / `.allow.txt`: shown in logs as the bundle. */
  bundle: string;
  /** Name rules: keys[i] is on line lines[i]; allow[i] is 1 for an allow rule. */
  keys: string[];
  lines: Uint32Array;
  allow: Uint8Array;
  ipRules: { cidr: Cidr; line: number }[];
  /** The first invalid lines (at most MAX_INVALID_KEPT) and how many there were in all. */
  invalid: InvalidLine[];
  invalidCount: number;
  /** Lines that are not UTF-8, read as Latin-1 (the first MAX_INVALID_KEPT line numbers), and how many. */
  latin1Lines: number[];
  latin1Count: number;
  /** Identity of the file as read, for change detection on reload. */
  mtimeMs: number;
  size: number;
  /** True when an unterminated last line was held back (the file was still being written). */
  partial: boolean;
  /**
   * Where an append can be parsed from: the byte after the last complete line read, or -1
   * when the last line read had no newline (text appended would continue it).
   */
  appendFrom: number;
  /** The line number of the line that starts at appendFrom. */
  nextLine: number;
  /**
   * SHA-256 of bytes [0, appendFrom): a file that grew is only read incrementally when what
   * was read before is still there, byte for byte (a rewrite in place that grew is not an append).
   */
  prefixHash: string;
  /** Inode as read (0 when unknown): a file replaced by rename is read whole. */
  ino: number;
  /**
   * A bundle loaded only because a `block` line names it (a file in available/): its rules
   * block only for groups that list it, not for everyone.
   */
  standby?: boolean;
}

export const MAX_INVALID_KEPT = 20;

/**
 * Largest list file read (64 MiB): about 2.5 million rules of the usual 25 bytes, well above
 * the largest public lists. A bigger file is left out with a message, so that one stray file
 * (a log, a disk image) cannot take the server's memory.
 */
export const MAX_LIST_FILE_BYTES = 64 * 1024 * 1024;

/** What a directory entry is when it is not a regular file, for messages. */
export function fileKind(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'a special file';
}

/** `msn-messenger.txt` -> `msn-messenger`; `local.allow.txt` -> `local`. */
export function bundleName(path: string): string {
  return basename(path).replace(/(\.allow)?\.txt$/i, '');
}

/** `*.allow.txt` files hold allow rules only: a plain domain there is an exception. */
export function isAllowFile(path: string): boolean {
  return /\.allow\.txt$/i.test(path);
}

// Plain domain lines are most of every list: they are read straight from the file's bytes
// into keys, without a string per line. Everything else goes through parseRuleLine.
const keyScratch = Buffer.allocUnsafe(256);
const NOTHING = 0;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d;
}

/**
 * A plain domain line (optionally indented, optionally followed by a comment) -> its key;
 * NOTHING for a blank or comment-only line; null when the line needs the full grammar
 * (hosts lines, adblock rules, wildcards, IDN, anything odd), which then also gives the
 * error message.
 */
function scanPlainDomain(bytes: Buffer, start: number, end: number): string | typeof NOTHING | null {
  let i = start;
  while (i < end && isSpace(bytes[i]!)) i++;
  if (i === end || bytes[i] === 0x23 || bytes[i] === 0x21) return NOTHING;
  let out = 1;
  let lengthAt = 0;
  let onlyDigits = true;
  for (; i < end; i++) {
    let c = bytes[i]!;
    if (c === 0x2e) {
      const len = out - lengthAt - 1;
      if (len === 0 || len > 63) return null;
      keyScratch[lengthAt] = len;
      lengthAt = out++;
      continue;
    }
    if (isSpace(c) || c === 0x23 || c === 0x21) break;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    const digit = c >= 0x30 && c <= 0x39;
    if (!digit) onlyDigits = false;
    if (!((c >= 0x61 && c <= 0x7a) || digit || c === 0x2d || c === 0x5f)) return null;
    if (out >= 255) return null;
    keyScratch[out++] = c;
  }
  // The rest of the line may only be blank or a comment.
  for (let j = i; j < end; j++) {
    const c = bytes[j]!;
    if (c === 0x23 || c === 0x21) break;
    if (!isSpace(c)) return null;
  }
  const trailingDot = out === lengthAt + 1;
  const len = out - lengthAt - 1;
  if (!trailingDot) {
    if (len > 63) return null;
    keyScratch[lengthAt] = len;
    lengthAt = out;
  }
  // An address alone, or a lone dot, gets the full grammar's error message.
  if (onlyDigits || lengthAt === 0) return null;
  return keyScratch.toString('latin1', 0, lengthAt);
}

/**
 * Parses a file's bytes (UTF-8; a line that is not is read as Latin-1 and reported). Pure: no
 * I/O, so tests and the reloader can call it directly.
 */
export function parseListBytes(path: string, bytes: Buffer, mtimeMs = 0, size = bytes.length): ListFile {
  const steps = parseSteps(path, bytes, mtimeMs, size, false);
  let step = steps.next();
  while (!step.done) step = steps.next();
  return step.value;
}

/**
 * The parser as a generator: it yields every few thousand lines so that a reload can run
 * it in time slices (see slices.ts), and returns the ListFile. With `holdPartial`, an
 * unterminated last line is left out and the file marked partial: it is being written.
 * `previousKeys` (the same file's keys before a reload): where the i-th key is unchanged,
 * the old string is kept and the new one dies young, so that reloading an appended-to file
 * of a million rules does not hand the garbage collector a million new strings to copy
 * (which stalls queries for tens of milliseconds).
 */
export function* parseSteps(path: string, whole: Buffer, mtimeMs: number, size: number, holdPartial: boolean,
  previousKeys: readonly string[] = [], from: AppendStart = { line: 1, hash: createHash('sha256') }): Generator<void, ListFile> {
  let bytes = whole;
  let partial = false;
  if (holdPartial && bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) {
    bytes = bytes.subarray(0, bytes.lastIndexOf(0x0a) + 1);
    partial = true;
  }
  const allowFile = isAllowFile(path);
  // Sized from the previous version: growing million-entry JS arrays push by push stalls
  // the event loop for tens of milliseconds at a time (copies and the collections they set
  // off). Lines and flags go in typed arrays that grow by a memcpy.
  const keys: string[] = previousKeys.slice();
  // A small file gets small arrays: 20,000 files of a few lines must not cost 5 KB each.
  let lines = new Uint32Array(previousKeys.length + Math.min(1024, 16 + (whole.length >> 4)));
  let allow = new Uint8Array(lines.length);
  let count = 0;
  const addKey = (key: string, lineNo: number, isAllow: boolean): void => {
    if (count === lines.length) {
      const grown = new Uint32Array(lines.length * 2);
      grown.set(lines);
      lines = grown;
      const grownAllow = new Uint8Array(grown.length);
      grownAllow.set(allow);
      allow = grownAllow;
    }
    if (count < keys.length) {
      // Where the key is unchanged, the old string stays (see above).
      if (keys[count] !== key) keys[count] = key;
    } else keys.push(key);
    lines[count] = lineNo;
    allow[count] = isAllow ? 1 : 0;
    count++;
  };
  const ipRules: { cidr: Cidr; line: number }[] = [];
  const invalid: InvalidLine[] = [];
  let invalidCount = 0;
  // A file that is not UTF-8 as a whole (an old list with a Latin-1 comment such as
  // `# Müller`) loses nothing: only its lines that are not UTF-8 are read as Latin-1, and named.
  const checkLines = !isUtf8(bytes);
  const latin1Lines: number[] = [];
  let latin1Count = 0;
  // Skip a UTF-8 byte order mark (only at the start of the file, not of an append).
  let start = from.line === 1 && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let lineNo = from.line - 1;
  // Hashed as the parse goes, a slice at a time (hashing 25 MB at once holds queries up 12 ms).
  const hash = from.hash;
  let hashed = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    lineNo++;
    if ((lineNo & (YIELD_EVERY - 1)) === 0) {
      hash.update(bytes.subarray(hashed, start));
      hashed = start;
      yield;
    }
    let encoding: 'utf8' | 'latin1' = 'utf8';
    if (checkLines && !lineIsUtf8(bytes, start, end)) {
      encoding = 'latin1';
      if (latin1Count++ < MAX_INVALID_KEPT) latin1Lines.push(lineNo);
    }
    const plain = scanPlainDomain(bytes, start, end);
    if (typeof plain === 'string') {
      addKey(plain, lineNo, allowFile);
    } else if (plain === null) {
      const text = bytes.toString(encoding, start, end);
      const rule = parseRuleLine(text);
      switch (rule.kind) {
        case 'name':
          for (const key of rule.keys) addKey(key, lineNo, rule.allow || allowFile);
          break;
        case 'ip':
          ipRules.push({ cidr: rule.cidr, line: lineNo });
          break;
        case 'invalid':
          invalidCount++;
          if (invalid.length < MAX_INVALID_KEPT) invalid.push({ line: lineNo, text: text.trim().slice(0, 200), reason: rule.reason });
          break;
        case 'none':
          break;
      }
    }
    start = end + 1;
  }
  keys.length = count;
  // Complete lines end at the last newline; an unterminated last line (not held back) was read
  // as a rule, so an append would continue it: such a file is read whole next time. The last
  // line counted (lineNo) is the one that starts there.
  const complete = bytes.lastIndexOf(0x0a) + 1;
  const appendFrom = complete === bytes.length || partial ? complete : -1;
  hash.update(bytes.subarray(hashed, Math.max(hashed, complete)));
  const rows = keptRows(lines, allow, count, count >= ROOM_FROM ? withRoom(count) : count);
  return {
    path, bundle: bundleName(path), keys, lines: rows.lines, allow: rows.allow,
    ipRules, invalid, invalidCount, latin1Lines, latin1Count, mtimeMs, size, partial,
    appendFrom, nextLine: lineNo, prefixHash: appendFrom < 0 ? '' : hash.digest('hex'), ino: 0,
  };
}

/** Where a parse starts: line 1 of a file, or the line after what was read before (an append), with the hash of the bytes before it. */
export interface AppendStart {
  line: number;
  hash: Hash;
}


function lineIsUtf8(bytes: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && bytes[i]! < 0x80) i++;
  return i === end || isUtf8(bytes.subarray(start, end));
}

/** The same from text (tests, and callers that already hold a string). */
export function parseListText(path: string, text: string, mtimeMs = 0, size?: number): ListFile {
  const bytes = Buffer.from(text, 'utf8');
  return parseListBytes(path, bytes, mtimeMs, size ?? bytes.length);
}

export interface ReadOptions {
  /** This file as it was read last time (a reload): its unchanged keys are reused. */
  previous?: ListFile;
  /** Parse in time slices (reloads) instead of all at once (startup). */
  sliced?: boolean;
  /** Hold back an unterminated last line when the file changed less than this many ms ago. */
  holdPartialWithinMs?: number;
  /** Larger files are not read (default MAX_LIST_FILE_BYTES). */
  maxBytes?: number;
}

/**
 * Reads and parses one file. Throws (with the reason in the message) when it cannot be read,
 * is not a regular file (a FIFO, a directory, a device such as /dev/zero behind a symlink: these
 * are never opened) or is larger than `maxBytes`.
 */
export async function readListFile(path: string, options: ReadOptions = {}): Promise<ListFile> {
  const small = readSmallFile(path, options);
  if (small !== null) return small;
  const { handle, info } = await openListFile(path, options.maxBytes);
  let bytes: Buffer;
  try {
    // What is there now; lines appended meanwhile are read next time (the change is seen).
    bytes = Buffer.allocUnsafe(info.size);
    let got = 0;
    while (got < bytes.length) {
      const { bytesRead } = await handle.read(bytes, got, bytes.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    bytes = bytes.subarray(0, got);
  } finally {
    await handle.close();
  }
  const file = await runParse(parseSteps(path, bytes, info.mtimeMs, info.size, holdsPartial(info, options), options.previous?.keys), options);
  file.ino = info.ino;
  return file;
}

/**
 * Files up to this size are read with synchronous calls (open, fstat, read, close: some
 * 20 µs), not four trips through the thread pool each: a folder of 20,000 small files loads
 * in a fraction of the time. A larger one is read asynchronously.
 */
export const SMALL_FILE_BYTES = 64 * 1024;

/** readListFile for a small file, synchronously; null when the file is larger (read it the other way). */
function readSmallFile(path: string, options: ReadOptions): ListFile | null {
  // Non-blocking: should a FIFO have taken the file's place, opening it must not wait for a writer.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  let bytes: Buffer;
  let info: Stats;
  try {
    info = fstatSync(fd);
    if (!info.isFile()) throw new Error(`${fileKind(info)}, not a regular file`);
    const max = options.maxBytes ?? MAX_LIST_FILE_BYTES;
    if (info.size > max) throw new Error(`${sizeText(info.size)} is over the ${sizeText(max)} limit for one list file; split it`);
    if (info.size > SMALL_FILE_BYTES) return null;
    bytes = Buffer.allocUnsafe(info.size);
    let got = 0;
    while (got < bytes.length) {
      const read = readSync(fd, bytes, got, bytes.length - got, got);
      if (read === 0) break;
      got += read;
    }
    bytes = bytes.subarray(0, got);
  } finally {
    closeSync(fd);
  }
  const steps = parseSteps(path, bytes, info.mtimeMs, info.size, holdsPartial(info, options), options.previous?.keys);
  let step = steps.next();
  while (!step.done) step = steps.next();
  step.value.ino = info.ino;
  return step.value;
}

/** A file read from where its previous version ended: the whole file now, and the new lines alone (their problems are news). */
export interface AppendRead {
  file: ListFile;
  added: ListFile;
}

/**
 * Whether `old` may have grown by an append only, from what stat says: the same inode, not
 * shorter, and read up to a newline last time. readAppended checks the bytes themselves.
 */
export function mayBeAppend(old: ListFile, info: Stats): boolean {
  return old.appendFrom >= 0 && old.ino !== 0 && info.ino === old.ino && info.size >= old.size && (info.size > old.size || old.partial);
}

/**
 * Reads only what was appended to `old`'s file: the bytes read before are hashed (not
 * parsed) and must match, then the rest is parsed with line numbers going on. Returns null
 * when the file is not `old` plus an append (a rewrite in place, a truncation): read it whole.
 * Cheap for a million-line file that got one line: no string and no rule is made twice.
 */
export async function readAppended(path: string, old: ListFile, options: ReadOptions = {}): Promise<AppendRead | null> {
  const { handle, info } = await openListFile(path, options.maxBytes);
  const hash = createHash('sha256');
  let tail: Buffer;
  try {
    if (!mayBeAppend(old, info)) return null;
    // The old part a chunk at a time: hashing it whole would hold queries up (SHA-256 runs at
    // 1-2 GB/s here: 16-35 ms for the 33 MiB of a million rules); a 256 KiB chunk takes
    // 0.13-0.25 ms, and queries are answered between chunks.
    const chunk = Buffer.allocUnsafe(Math.min(old.appendFrom, 256 * 1024));
    for (let at = 0; at < old.appendFrom;) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, old.appendFrom - at), at);
      if (bytesRead === 0) return null;
      hash.update(chunk.subarray(0, bytesRead));
      at += bytesRead;
    }
    if (hash.copy().digest('hex') !== old.prefixHash) return null;
    tail = Buffer.allocUnsafe(info.size - old.appendFrom);
    let got = 0;
    while (got < tail.length) {
      const { bytesRead } = await handle.read(tail, got, tail.length - got, old.appendFrom + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    tail = tail.subarray(0, got);
  } finally {
    await handle.close();
  }
  const added = await runParse(parseSteps(path, tail, info.mtimeMs, info.size, holdsPartial(info, options), [],
    { line: old.nextLine, hash }), options);
  // The keys array is shared with `old` and grows in place: copying a million-entry array
  // costs 10-50 ms of pause. `old`'s rule set only ever looks at its first lines.length keys.
  // Longer already: another version was extended from `old` (a reload that was not swapped
  // in); it may still be in use, so this one gets a copy.
  const from = old.lines.length;
  const keys = old.keys.length === from ? old.keys as string[] : old.keys.slice(0, from);
  for (const key of added.keys) keys.push(key);
  const file: ListFile = {
    ...old, keys, ...appendRows(old, added),
    ipRules: added.ipRules.length === 0 ? old.ipRules : [...old.ipRules, ...added.ipRules],
    invalid: [...old.invalid, ...added.invalid].slice(0, MAX_INVALID_KEPT),
    invalidCount: old.invalidCount + added.invalidCount,
    latin1Lines: [...old.latin1Lines, ...added.latin1Lines].slice(0, MAX_INVALID_KEPT),
    latin1Count: old.latin1Count + added.latin1Count,
    mtimeMs: info.mtimeMs, size: info.size, partial: added.partial,
    appendFrom: added.appendFrom < 0 ? -1 : old.appendFrom + added.appendFrom,
    nextLine: added.nextLine, prefixHash: added.prefixHash, ino: info.ino,
  };
  return { file, added };
}

/**
 * Files with at least this many rules keep room after their last rule (withRoom in
 * ruleset.ts) so that appends write in place; small ones (a folder of 20,000 of them) do not.
 */
const ROOM_FROM = 4096;

/**
 * The rows (lines, allow) of a file as views of `length` entries into buffers of `room`
 * (offset 0): what appendRows needs to write after them in place.
 */
function keptRows(lines: Uint32Array, allow: Uint8Array, length: number, room: number): { lines: Uint32Array; allow: Uint8Array } {
  const keptLines = new Uint32Array(room);
  const keptAllow = new Uint8Array(room);
  keptLines.set(lines.subarray(0, length));
  keptAllow.set(allow.subarray(0, length));
  rowsUsed.set(keptLines.buffer, length);
  return { lines: keptLines.subarray(0, length), allow: keptAllow.subarray(0, length) };
}

/**
 * Rows written in a lines buffer by the last file that used it. The version of a file
 * extended from the one that last wrote there appends in place: the older version only reads
 * its own first lines.length rows, so it does not change. Any other (a second extension of
 * the same version, an extension of an older one) copies.
 */
const rowsUsed = new WeakMap<ArrayBufferLike, number>();

/** `old`'s rows followed by `added`'s: in place when there is room, else copied into buffers with room for more appends. */
function appendRows(old: ListFile, added: ListFile): { lines: Uint32Array; allow: Uint8Array } {
  const from = old.lines.length;
  const total = from + added.lines.length;
  const inPlace = rowsUsed.get(old.lines.buffer) === from && old.lines.byteOffset === 0 && old.allow.byteOffset === 0
    && old.lines.buffer.byteLength >= total * Uint32Array.BYTES_PER_ELEMENT && old.allow.buffer.byteLength >= total;
  const lines = inPlace ? new Uint32Array(old.lines.buffer, 0, total) : new Uint32Array(withRoom(total)).subarray(0, total);
  const allow = inPlace ? new Uint8Array(old.allow.buffer, 0, total) : new Uint8Array(withRoom(total)).subarray(0, total);
  if (!inPlace) {
    lines.set(old.lines);
    allow.set(old.allow);
  }
  rowsUsed.set(lines.buffer, total);
  lines.set(added.lines, from);
  allow.set(added.allow, from);
  return { lines, allow };
}

async function openListFile(path: string, maxBytes = MAX_LIST_FILE_BYTES) {
  const before = await stat(path);
  if (!before.isFile()) throw new Error(`${fileKind(before)}, not a regular file`);
  if (before.size > maxBytes) throw new Error(`${sizeText(before.size)} is over the ${sizeText(maxBytes)} limit for one list file; split it`);
  // Non-blocking: should a FIFO have taken the file's place since, opening it must not wait for a writer.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${fileKind(info)}, not a regular file`);
    if (info.size > maxBytes) throw new Error(`${sizeText(info.size)} is over the ${sizeText(maxBytes)} limit for one list file; split it`);
    return { handle, info };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function holdsPartial(info: Stats, options: ReadOptions): boolean {
  return options.holdPartialWithinMs !== undefined && Date.now() - info.mtimeMs < options.holdPartialWithinMs;
}

/** Runs a parse, in time slices when `options.sliced`. */
async function runParse(steps: Generator<void, ListFile>, options: ReadOptions): Promise<ListFile> {
  let step = steps.next();
  let due = performance.now() + SLICE_MS;
  while (!step.done) {
    if (options.sliced && performance.now() >= due) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      due = performance.now() + SLICE_MS;
    }
    step = steps.next();
  }
  return step.value;
}

function sizeText(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}
