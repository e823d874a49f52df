// Local names from hosts files (`/etc/hosts` format: `ADDRESS NAME [ALIAS ...]`, `#`
// comments): A and AAAA for the names, PTR for the addresses (the first name on the line is
// the one a reverse lookup gives). Files are read at start and re-read when they change
// (checked every two seconds; editors replace files, which inotify on the file would miss).
// A bad line is skipped with a warning naming file:line; an unreadable file keeps its
// previous names.
import { readFile, stat } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from '../../observe/log.js';
import { addressBytes, localRecord } from '../../wire/answer.js';
import { QTYPE } from '../../wire/constants.js';
import { mustKey, textToKey } from '../../wire/names.js';

/** TTL of answers from hosts files: short, so that an edit reaches clients soon. */
export const HOSTS_TTL = 30;

export interface HostsEntry {
  a: Buffer[];
  aaaa: Buffer[];
}

/** Names and reverse names -> prebuilt answer records. Immutable; a re-read builds a new one. */
export class HostsTable {
  readonly names = new Map<string, HostsEntry>();
  readonly reverse = new Map<string, Buffer[]>();

  get size(): number {
    return this.names.size;
  }
}

export interface HostsProblem {
  where: string;
  text: string;
  reason: string;
}

/** The reverse name of an address: d.c.b.a.in-addr.arpa, or nibbles.ip6.arpa. */
export function reverseName(address: string): string {
  const bytes = addressBytes(address);
  if (bytes.length === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (const b of bytes) nibbles.push((b >> 4).toString(16), (b & 15).toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

/** A name as wire bytes with its root byte (PTR rdata is never compressed here). */
function wireName(key: string): Buffer {
  return Buffer.concat([Buffer.from(key, 'latin1'), Buffer.from([0])]);
}

/**
 * Parses hosts files' text into one table. `localDomain` (e.g. "lan"): a name without a dot
 * is also known as NAME.localDomain.
 */
export function parseHosts(files: { path: string; text: string }[], localDomain: string | null, ttl = HOSTS_TTL): { table: HostsTable; problems: HostsProblem[] } {
  const table = new HostsTable();
  const problems: HostsProblem[] = [];
  for (const { path, text } of files) {
    text.split('\n').forEach((rawLine, index) => {
      const line = rawLine.replace(/#.*/, '').trim();
      if (line.length === 0) return;
      const [address, ...names] = line.split(/\s+/);
      const where = `${path}:${index + 1}`;
      const ip = address!.replace(/%.*$/, '');
      if (!isIPv4(ip) && !isIPv6(ip)) {
        problems.push({ where, text: rawLine.trim().slice(0, 200), reason: `"${address!.slice(0, 60)}" is not an IP address` });
        return;
      }
      if (names.length === 0) {
        problems.push({ where, text: rawLine.trim().slice(0, 200), reason: 'an address with no name' });
        return;
      }
      const rdata = addressBytes(ip);
      const rr = localRecord(rdata.length === 4 ? QTYPE.A : QTYPE.AAAA, ttl, rdata);
      const keys: string[] = [];
      /** What the address's PTR gives: the first name, qualified when a local domain is set. */
      let ptrTarget: string | null = null;
      for (const name of names) {
        const key = textToKey(name);
        if (typeof key !== 'string') {
          problems.push({ where, text: rawLine.trim().slice(0, 200), reason: `"${name.slice(0, 60)}": ${key.error}` });
          continue;
        }
        keys.push(key);
        const qualified = localDomain !== null && !name.includes('.') ? mustKey(`${name}.${localDomain}`) : null;
        if (qualified !== null) keys.push(qualified);
        ptrTarget ??= qualified ?? key;
      }
      for (const key of keys) {
        let entry = table.names.get(key);
        if (entry === undefined) {
          entry = { a: [], aaaa: [] };
          table.names.set(key, entry);
        }
        (rdata.length === 4 ? entry.a : entry.aaaa).push(rr);
      }
      if (ptrTarget !== null) {
        const ptrKey = mustKey(reverseName(ip));
        if (!table.reverse.has(ptrKey)) table.reverse.set(ptrKey, [localRecord(QTYPE.PTR, ttl, wireName(ptrTarget))]);
      }
    });
  }
  return { table, problems };
}

/**
 * Client names (DHCP leases, client-names files) as local names: each NAME answers A/AAAA as
 * NAME and NAME.localDomain, and its address a PTR to NAME.localDomain. Built again whenever
 * the names change; a hosts file's entry wins over a lease's.
 */
export function namesTable(pairs: readonly { address: string; name: string }[], localDomain: string): HostsTable {
  return parseHosts([{ path: 'client-names', text: pairs.map((p) => `${p.address} ${p.name}`).join('\n') }], localDomain).table;
}

/** Watches hosts files and keeps `table` current. */
export class HostsSource {
  table = new HostsTable();
  private readonly seen = new Map<string, string>();
  private readonly texts = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly paths: readonly string[], private readonly localDomain: string | null, private readonly log: Logger,
    private readonly pollMs = 2000) {}

  /** Reads every file; a missing file at start is a warning (it may appear later), not an error. */
  async start(): Promise<void> {
    await this.refresh(true);
    if (this.paths.length > 0) {
      this.timer = setInterval(() => void this.refresh(false), this.pollMs);
      this.timer.unref();
    }
  }

  async refresh(first: boolean): Promise<boolean> {
    let changed = first;
    for (const path of this.paths) {
      let signature: string;
      try {
        const s = await stat(path);
        signature = `${s.mtimeMs}:${s.size}:${s.ino}`;
        if (this.seen.get(path) === signature) continue;
        this.texts.set(path, await readFile(path, 'latin1'));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        if (this.seen.get(path) !== 'error') {
          this.log.warn({ file: path, reason: code }, this.texts.has(path)
            ? `cannot read hosts file ${path} (${code}); keeping its previous names`
            : `cannot read hosts file ${path} (${code}); its names are not served until it can be read`);
        }
        this.seen.set(path, 'error');
        continue;
      }
      this.seen.set(path, signature);
      changed = true;
    }
    if (!changed) return false;
    const { table, problems } = parseHosts(this.paths.filter((p) => this.texts.has(p)).map((p) => ({ path: p, text: this.texts.get(p)! })), this.localDomain);
    for (const p of problems) this.log.warn({ where: p.where, text: p.text, reason: p.reason }, `hosts line skipped: ${p.where}: ${p.reason}`);
    this.table = table;
    if (!first) this.log.info({ files: this.paths, names: table.size }, `hosts files re-read: ${table.size} names`);
    return true;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
