// One blocklist file, read and parsed: its name rules as keys with their line numbers, its
// answer-IP rules, and the lines it had to skip. Kept per file so that a reload can reuse
// the files that did not change and keep a file's old rules when it cannot be read.
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Cidr } from './cidr.js';
import { parseRuleLine } from './rule-line.js';

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
  /** Identity of the file as read, for change detection on reload. */
  mtimeMs: number;
  size: number;
}

export const MAX_INVALID_KEPT = 20;

/** `msn-messenger.txt` -> `msn-messenger`; `local.allow.txt` -> `local`. */
export function bundleName(path: string): string {
  return basename(path).replace(/(\.allow)?\.txt$/i, '');
}

/** `*.allow.txt` files hold allow rules only: a plain domain there is an exception. */
export function isAllowFile(path: string): boolean {
  return /\.allow\.txt$/i.test(path);
}

/** Parses a file's text. Pure: no I/O, so tests and the reload worker can call it directly. */
export function parseListText(path: string, text: string, mtimeMs = 0, size = text.length): ListFile {
  const allowFile = isAllowFile(path);
  const keys: string[] = [];
  const lines: number[] = [];
  const allow: number[] = [];
  const ipRules: { cidr: Cidr; line: number }[] = [];
  const invalid: InvalidLine[] = [];
  let invalidCount = 0;
  let start = 0;
  let lineNo = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const rule = parseRuleLine(text.slice(start, end));
    switch (rule.kind) {
      case 'name':
        for (const key of rule.keys) {
          keys.push(key);
          lines.push(lineNo);
          allow.push(rule.allow || allowFile ? 1 : 0);
        }
        break;
      case 'ip':
        ipRules.push({ cidr: rule.cidr, line: lineNo });
        break;
      case 'invalid':
        invalidCount++;
        if (invalid.length < MAX_INVALID_KEPT) {
          invalid.push({ line: lineNo, text: text.slice(start, end).trim().slice(0, 200), reason: rule.reason });
        }
        break;
      case 'none':
        break;
    }
    start = end + 1;
  }
  return {
    path, bundle: bundleName(path), keys, lines: Uint32Array.from(lines), allow: Uint8Array.from(allow),
    ipRules, invalid, invalidCount, mtimeMs, size,
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Reads and parses one file. Throws (with the reason in the message) when it cannot be read or is not UTF-8. */
export async function readListFile(path: string): Promise<ListFile> {
  const info = await stat(path);
  const bytes = await readFile(path);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new Error('not UTF-8 text');
  }
  return parseListText(path, text, info.mtimeMs, bytes.length);
}
