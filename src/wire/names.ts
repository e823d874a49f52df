// Domain names in two forms:
//  - text: `gateway.messenger.hotmail.com` (what people write and read);
//  - key:  the wire form without the root byte, lower-cased, held in a latin1 string,
//          e.g. "\x07gateway\x09messenger\x07hotmail\x03com".
// Keys are what the matcher and the cache use: the parent of a key is a substring of it
// (skip one length byte and its label), so a walk up the labels costs no encoding.
import { domainToASCII } from 'node:url';

export const MAX_NAME_WIRE = 255;
export const MAX_LABEL = 63;

// Built names are written here and sliced into a flat string: one allocation per name,
// and no cons-strings kept alive inside a million-entry map.
const keyScratch = Buffer.allocUnsafe(MAX_NAME_WIRE + 1);

function isNameChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

/**
 * Text name -> key. Lower-cases, drops one trailing dot, converts internationalised names
 * to punycode. Returns an error (for the caller's message) when the name is not a host
 * name: empty labels, labels over 63 bytes, characters other than letters, digits, `-`
 * and `_`, or more than 255 bytes on the wire.
 */
export function textToKey(text: string): string | { error: string } {
  let name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.length === 0) return { error: 'empty name' };
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(name)) {
    const ascii = domainToASCII(name);
    if (ascii === '') return { error: 'not a valid internationalised name' };
    name = ascii;
  }
  let lengthAt = 0;
  let out = 1;
  for (let i = 0; i <= name.length; i++) {
    let c = i < name.length ? name.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const len = out - lengthAt - 1;
      if (len === 0) return { error: 'empty label (two dots in a row?)' };
      if (len > MAX_LABEL) return { error: 'a label is longer than 63 characters' };
      keyScratch[lengthAt] = len;
      lengthAt = out++;
      continue;
    }
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (!isNameChar(c)) return { error: `"${name[i]}" cannot be part of a host name` };
    if (out >= MAX_NAME_WIRE) return { error: 'name is longer than 255 bytes' };
    keyScratch[out++] = c;
  }
  return keyScratch.toString('latin1', 0, lengthAt);
}

/** Key -> text, for logs and messages. Bytes that are not printable are written as \DDD. */
export function keyToText(key: string): string {
  if (key.length === 0) return '.';
  let out = '';
  let i = 0;
  while (i < key.length) {
    const len = key.charCodeAt(i);
    if (i > 0) out += '.';
    const end = Math.min(i + len, key.length - 1);
    // A label of plain characters (nearly all) is appended in one piece: one string per label
    // instead of one per character (the history and the log ask for every blocked query's rule).
    let plain = true;
    for (let j = i + 1; j <= end; j++) {
      const c = key.charCodeAt(j);
      if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c) {
        plain = false;
        break;
      }
    }
    if (plain) out += key.slice(i + 1, end + 1);
    else {
      for (let j = i + 1; j <= end; j++) {
        const c = key.charCodeAt(j);
        if (c === 0x2e || c === 0x5c) out += '\\' + key[j];
        else if (c > 0x20 && c < 0x7f) out += key[j];
        else out += '\\' + String(c).padStart(3, '0');
      }
    }
    i += len + 1;
  }
  return out;
}

/** Text -> key, throwing on an invalid name (for tests and the check command). */
export function mustKey(text: string): string {
  const key = textToKey(text);
  if (typeof key !== 'string') throw new Error(`invalid name "${text}": ${key.error}`);
  return key;
}
