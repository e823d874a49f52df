// One blocklist file, read and parsed: its name rules as keys with their line numbers, its
// answer-IP rules, and the lines it had to skip. Kept per file so that a reload can reuse
// the files that did not change and keep a file's old rules when it cannot be read.
import { isUtf8 } from 'node:buffer';
import { constants, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Cidr } from './cidr.js';
import { parseRuleLine } from './rule-line.js';
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
  previousKeys: readonly string[] = []): Generator<void, ListFile> {
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
  let lines = new Uint32Array(previousKeys.length + 1024);
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
  // Skip a UTF-8 byte order mark.
  let start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let lineNo = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    lineNo++;
    if ((lineNo & (YIELD_EVERY - 1)) === 0) yield;
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
  return {
    path, bundle: bundleName(path), keys, lines: lines.slice(0, count), allow: allow.slice(0, count),
    ipRules, invalid, invalidCount, latin1Lines, latin1Count, mtimeMs, size, partial,
  };
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
  const before = await stat(path);
  if (!before.isFile()) throw new Error(`${fileKind(before)}, not a regular file`);
  const max = options.maxBytes ?? MAX_LIST_FILE_BYTES;
  if (before.size > max) throw new Error(`${sizeText(before.size)} is over the ${sizeText(max)} limit for one list file; split it`);
  // Non-blocking: should a FIFO have taken the file's place since, opening it must not wait for a writer.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  let bytes: Buffer;
  let info: Stats;
  try {
    info = await handle.stat();
    if (!info.isFile()) throw new Error(`${fileKind(info)}, not a regular file`);
    if (info.size > max) throw new Error(`${sizeText(info.size)} is over the ${sizeText(max)} limit for one list file; split it`);
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
  const holdPartial = options.holdPartialWithinMs !== undefined && Date.now() - info.mtimeMs < options.holdPartialWithinMs;
  const steps = parseSteps(path, bytes, info.mtimeMs, info.size, holdPartial, options.previous?.keys);
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
