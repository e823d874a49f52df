// Client names: which name goes with a client address, from `client-names FILE` lines. A file
// is a dnsmasq leases file (`EXPIRY MAC IP NAME CLIENTID`), an ISC dhcpd leases file
// (`lease IP { ... client-hostname "NAME"; ... }`) or a hosts file (`IP NAME ...`), told apart
// by its content. Files are re-read when they change (stat every two seconds: DHCP servers
// and editors replace files, which inotify on the file would miss). A bad line is skipped
// with a warning naming file:line; an unreadable file keeps its previous names.
//
// `nameOf(address)` is one Map lookup on the address as Node reports it (both `10.0.0.5` and
// `::ffff:10.0.0.5` are keys), returning a string made at parse time: nothing is allocated per
// query. `version` goes up on every change so that tables built from names (groups given by
// name) know when to rebuild.
import { readFile, stat } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from './log.js';

export type NamesFormat = 'dnsmasq' | 'dhcpd' | 'hosts';

/** What observers and groups need: a name for an address, addresses for a name. */
export interface ClientNameLookup {
  /** The client's name, or undefined. No allocation. */
  nameOf(address: string): string | undefined;
}

export interface ClientNameSource extends ClientNameLookup {
  /** Goes up by one each time the names change. */
  readonly version: number;
  /** Every address (as written in the files, and its ::ffff: form for IPv4) with this name (lower case). */
  addressesOf(name: string): readonly string[];
}

export interface NamesProblem {
  where: string;
  reason: string;
}

export interface NamedAddress {
  address: string;
  name: string;
}

const HOSTNAME = /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;

/** Which kind of file `text` is: dhcpd has `lease` blocks; dnsmasq lines start with an expiry time. */
export function detectFormat(text: string): NamesFormat {
  if (/^\s*lease\s+\S+\s*\{/m.test(text)) return 'dhcpd';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '' || line.startsWith('duid ')) continue;
    const words = line.split(/\s+/);
    return words.length >= 4 && /^\d+$/.test(words[0]!) && (isIPv4(words[2]!) || isIPv6(words[2]!)) ? 'dnsmasq' : 'hosts';
  }
  return 'hosts';
}

function checkName(raw: string): string | null {
  const name = raw.toLowerCase().replace(/\.$/, '');
  return HOSTNAME.test(name) ? name : null;
}

/** One file's (address, name) pairs in file order, and the lines skipped. */
export function parseClientNames(path: string, text: string): { format: NamesFormat; entries: NamedAddress[]; problems: NamesProblem[] } {
  const format = detectFormat(text);
  const entries: NamedAddress[] = [];
  const problems: NamesProblem[] = [];
  const lines = text.split('\n');
  if (format === 'dhcpd') {
    // Later blocks for an address replace earlier ones (dhcpd appends); a lease that is no
    // longer bound takes its name away.
    const last = new Map<string, string | null>();
    let address: string | null = null;
    let name: string | null = null;
    let free = false;
    let start = 0;
    lines.forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      const where = `${path}:${i + 1}`;
      const open = /^lease\s+(\S+)\s*\{/.exec(line);
      if (open !== null) {
        address = isIPv4(open[1]!) || isIPv6(open[1]!) ? open[1]!.toLowerCase() : null;
        if (address === null) problems.push({ where, reason: `"${open[1]!.slice(0, 60)}" is not an IP address` });
        name = null;
        free = false;
        start = i;
        return;
      }
      if (address === null) return;
      const host = /^client-hostname\s+"([^"]*)"\s*;/.exec(line);
      if (host !== null) {
        name = checkName(host[1]!);
        if (name === null) problems.push({ where, reason: `"${host[1]!.slice(0, 60)}" is not a host name` });
      } else if (/^binding\s+state\s+(free|expired|released|abandoned|backup)\s*;/.test(line)) free = true;
      else if (line.startsWith('}')) {
        last.set(address, free ? null : name);
        address = null;
      }
    });
    if (address !== null) problems.push({ where: `${path}:${start + 1}`, reason: 'lease block not closed with }' });
    for (const [a, n] of last) if (n !== null) entries.push({ address: a, name: n });
    return { format, entries, problems };
  }
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const where = `${path}:${i + 1}`;
    const words = line.split(/\s+/);
    let address: string;
    let rawName: string | undefined;
    if (format === 'dnsmasq') {
      if (words[0] === 'duid') return;
      if (words.length < 4 || !/^\d+$/.test(words[0]!)) {
        problems.push({ where, reason: 'expected "EXPIRY MAC IP NAME CLIENTID"' });
        return;
      }
      address = words[2]!;
      rawName = words[3]!;
      // dnsmasq writes * for a client that sent no name.
      if (rawName === '*') return;
    } else {
      address = words[0]!.replace(/%.*$/, '');
      rawName = words[1];
      if (rawName === undefined) {
        problems.push({ where, reason: 'an address with no name' });
        return;
      }
    }
    if (!isIPv4(address) && !isIPv6(address)) {
      problems.push({ where, reason: `"${address.slice(0, 60)}" is not an IP address` });
      return;
    }
    const name = checkName(rawName);
    if (name === null) {
      problems.push({ where, reason: `"${rawName.slice(0, 60)}" is not a host name` });
      return;
    }
    entries.push({ address: address.toLowerCase(), name });
  });
  return { format, entries, problems };
}

/** address -> name and name -> addresses; immutable, a re-read builds a new one. */
export class ClientNamesTable {
  readonly byAddress = new Map<string, string>();
  readonly byName = new Map<string, string[]>();
  /** (address, name) once each, as written in the files: for the local stage. */
  readonly pairs: NamedAddress[] = [];

  /** The first file naming an address wins. */
  add(address: string, name: string): void {
    if (this.byAddress.has(address)) return;
    this.pairs.push({ address, name });
    const keys = isIPv4(address) ? [address, `::ffff:${address}`] : [address];
    for (const key of keys) this.byAddress.set(key, name);
    let list = this.byName.get(name);
    if (list === undefined) this.byName.set(name, (list = []));
    list.push(...keys);
  }
}

const NONE: readonly string[] = [];

/** Watches the client-names files and keeps the table current. */
export class ClientNames implements ClientNameSource {
  table = new ClientNamesTable();
  version = 0;
  /** Called after each change (the local stage rebuilds its records). */
  onChange: (() => void) | null = null;
  private readonly seen = new Map<string, string>();
  private readonly parsed = new Map<string, NamedAddress[]>();
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly paths: readonly string[], private readonly log: Logger, private readonly pollMs = 2000) {}

  nameOf(address: string): string | undefined {
    return this.table.byAddress.get(address);
  }

  addressesOf(name: string): readonly string[] {
    return this.table.byName.get(name.toLowerCase()) ?? NONE;
  }

  /** Reads every file; a missing file is a warning (the DHCP server may not have written it yet). */
  async start(): Promise<void> {
    await this.refresh(true);
    if (this.paths.length > 0 && this.timer === null) {
      this.timer = setInterval(() => void this.refresh(false), this.pollMs);
      this.timer.unref();
    }
  }

  /** Re-reads the files that changed; true when the names were rebuilt. */
  async refresh(first = false): Promise<boolean> {
    let changed = first;
    for (const path of this.paths) {
      let signature: string;
      let text: string;
      try {
        const s = await stat(path);
        signature = `${s.mtimeMs}:${s.size}:${s.ino}`;
        if (this.seen.get(path) === signature) continue;
        text = await readFile(path, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        if (this.seen.get(path) !== 'error') {
          this.log.warn({ file: path, reason: code }, this.parsed.has(path)
            ? `cannot read client-names file ${path} (${code}); keeping its previous names`
            : `cannot read client-names file ${path} (${code}); its clients are shown by address until it can be read`);
        }
        this.seen.set(path, 'error');
        continue;
      }
      this.seen.set(path, signature);
      const { format, entries, problems } = parseClientNames(path, text);
      for (const p of problems) this.log.warn({ where: p.where, reason: p.reason }, `client-names line skipped: ${p.where}: ${p.reason}`);
      this.parsed.set(path, entries);
      if (!first) this.log.info({ file: path, format, names: entries.length }, `client-names file re-read: ${path} (${format}), ${entries.length} names`);
      changed = true;
    }
    if (!changed) return false;
    const table = new ClientNamesTable();
    for (const path of this.paths) for (const e of this.parsed.get(path) ?? []) table.add(e.address, e.name);
    this.table = table;
    this.version++;
    this.onChange?.();
    return true;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
