// What the History observer hands to the writer about once a second: raw rows in columns
// (typed arrays and arrays of strings, cheap to copy to a worker thread) and roll-up counts
// for queries that have no raw row (not stored in this mode, or dropped from a full queue).

/** Raw rows, column by column; row i is element i of every column. */
export interface Rows {
  n: number;
  at: Float64Array;
  client: string[];
  /** Lower-cased wire-form qname (see wire/names.ts), turned into text by the writer. */
  qnameKey: string[];
  qtype: Uint16Array;
  verdict: Uint8Array;
  rcode: Uint8Array;
  /** '' = none. */
  upstream: string[];
  /** NaN = not measured. */
  latencyMs: Float64Array;
  /** '' = none (not blocked, or blocked without a rule, such as the canary). */
  bundle: string[];
  ruleFile: string[];
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
  rollups: RollupCell[];
  /** Name and group of every client in rows and rollups. */
  clients: Record<string, ClientInfo>;
  node: string;
}

export function emptyRows(capacity: number): Rows {
  return {
    n: 0, at: new Float64Array(capacity), client: new Array<string>(capacity).fill(''), qnameKey: new Array<string>(capacity).fill(''),
    qtype: new Uint16Array(capacity), verdict: new Uint8Array(capacity), rcode: new Uint8Array(capacity),
    upstream: new Array<string>(capacity).fill(''), latencyMs: new Float64Array(capacity),
    bundle: new Array<string>(capacity).fill(''), ruleFile: new Array<string>(capacity).fill(''), ruleLine: new Uint32Array(capacity),
  };
}
