// What the History observer hands to the writer about once a second: raw rows in columns of
// typed arrays only, and roll-up counts for queries that have no raw row (not stored in this
// mode, or dropped from a full queue). Texts (client addresses, bundles, rule files,
// upstreams) are numbers into the batch's own `texts`, and qnames are bytes in one buffer:
// the rows hold no JS strings, so the DNS thread keeps no per-query garbage alive for a
// second (it was promoted to the old generation and cost major GCs), and handing a batch over
// moves its buffers instead of cloning thousands of strings (docs/history.md, "Cost").

import { HEADER_LENGTH } from '../../wire/constants.js';

/** Raw rows, column by column; row i is element i of every column. */
export interface Rows {
  n: number;
  at: Float64Array;
  /** Index in `Batch.texts`. */
  client: Uint32Array;
  /**
   * Row i's lower-cased wire-form qname (see wire/names.ts), latin1, is the first
   * nameLength[i] bytes of names[i * NAME_SLOT ..]; a longer one (nameLength LONG_NAME) is
   * longNames[i]. Fixed slots: the DNS thread fills and hands them over with plain copies.
   */
  nameLength: Uint8Array;
  names: Uint8Array;
  longNames: Record<number, string>;
  qtype: Uint16Array;
  verdict: Uint8Array;
  rcode: Uint8Array;
  /** Index in `Batch.texts`; 0 = '' (none). */
  upstream: Uint32Array;
  /** NaN = not measured. */
  latencyMs: Float64Array;
  /** Index in `Batch.texts`; 0 = '' (not blocked, or blocked without a rule, such as the canary). */
  bundle: Uint32Array;
  ruleFile: Uint32Array;
  ruleLine: Uint32Array;
}

/** One roll-up cell's increment: count queries in (hour, client, group, bundle, verdict). */
export interface RollupCell {
  hour: number;
  client: string;
  bundle: string;
  verdict: number;
  count: number;
  first: number;
  last: number;
}

export interface ClientInfo {
  /** A name for the client (DHCP lease, hosts file), or '' when none is known. */
  name: string;
  group: string;
}

export interface Batch {
  rows: Rows;
  /** The texts the rows refer to by index; texts[0] is ''. */
  texts: string[];
  rollups: RollupCell[];
  /** Name and group of every client in rows and rollups. */
  clients: Record<string, ClientInfo>;
  node: string;
}

/** Bytes of a qname's slot; longer names (rare: most are under 40 bytes) are kept as strings aside. */
export const NAME_SLOT = 64;
export const LONG_NAME = 255;

export function emptyRows(capacity: number): Rows {
  return {
    n: 0, at: new Float64Array(capacity), client: new Uint32Array(capacity), nameLength: new Uint8Array(capacity), names: new Uint8Array(capacity * NAME_SLOT),
    longNames: {}, qtype: new Uint16Array(capacity), verdict: new Uint8Array(capacity), rcode: new Uint8Array(capacity),
    upstream: new Uint32Array(capacity), latencyMs: new Float64Array(capacity),
    bundle: new Uint32Array(capacity), ruleFile: new Uint32Array(capacity), ruleLine: new Uint32Array(capacity),
  };
}

/** The typed arrays of `rows`, for a transfer list. */
export function rowColumns(rows: Rows): ArrayBufferView[] {
  return [rows.at, rows.client, rows.nameLength, rows.names, rows.qtype, rows.verdict, rows.rcode, rows.upstream, rows.latencyMs, rows.bundle, rows.ruleFile, rows.ruleLine];
}

/** Stores row i's qname key. */
export function setQnameKey(rows: Rows, i: number, key: string): void {
  if (key.length <= NAME_SLOT) {
    const names = rows.names;
    const o = i * NAME_SLOT;
    for (let j = 0; j < key.length; j++) names[o + j] = key.charCodeAt(j);
    rows.nameLength[i] = key.length;
  } else {
    rows.nameLength[i] = LONG_NAME;
    rows.longNames[i] = key;
  }
}

/**
 * Stores row i's qname key from the query's own bytes: the question's name at offset 12
 * (HEADER_LENGTH) lower-cased is the key (wire/query.ts builds it so), and copying bytes
 * from a Buffer is cheaper than reading a sliced string's characters one call at a time.
 */
export function setQnameFromMessage(rows: Rows, i: number, msg: Uint8Array, key: string): void {
  const length = key.length;
  // A long name is kept as its string, as setQnameKey keeps it.
  if (length > NAME_SLOT) return setQnameKey(rows, i, key);
  const names = rows.names;
  const o = i * NAME_SLOT;
  for (let j = 0; j < length; j++) {
    const c = msg[HEADER_LENGTH + j]!;
    // Label lengths are at most 63, below 'A': only letters change.
    names[o + j] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
  }
  rows.nameLength[i] = length;
}

/** Interns texts for one batch: index 0 is ''. */
export class Texts {
  private ids = new Map<string, number>([['', 0]]);
  private list: string[] = [''];

  id(text: string): number {
    let id = this.ids.get(text);
    if (id === undefined) {
      id = this.list.length;
      this.ids.set(text, id);
      this.list.push(text);
    }
    return id;
  }

  /** The text of an id handed out since the last take(). */
  text(id: number): string {
    return this.list[id] ?? '';
  }

  /** The texts so far; starts a new set. */
  take(): string[] {
    const list = this.list;
    this.ids = new Map([['', 0]]);
    this.list = [''];
    return list;
  }
}
