// Client groups: `group staff 192.168.1.0/24 fd00:1::/64` puts clients into named groups by
// address. A client belongs to the group of its most specific matching network (longest
// prefix); a client in no group is in `default` (index 0). The answer for a client address
// is worked out once and kept in a small memo: clients repeat, parsing their text does not.
// A member may also be a client name (`group boss laptop-ceo`), resolved through the
// client-names files: each address with that name counts as an exact address (the most
// specific match). When the names change (their `version` moves) the name table is rebuilt
// and the memo dropped, on the next query: the per-query cost stays one Map lookup.
import { ConfigError } from '../../config/errors.js';
import type { ClientNameSource } from '../../observe/client-names.js';
import { cidrContains, clientBytes, parseCidr, type Cidr } from './cidr.js';

export const DEFAULT_GROUP = 'default';
const NAME = /^[a-z0-9][a-z0-9_-]*$/;
const MEMO_LIMIT = 65536;
/** A client name as a group member: a host name with at least one letter (so a mistyped address is not taken for one). */
export const CLIENT_NAME = /^(?=.*[a-z_])[a-z0-9_]([a-z0-9_-]*)(\.[a-z0-9_][a-z0-9_-]*)*$/;

export interface GroupLine {
  name: string;
  members: Cidr[];
  /** Client names (lower case), resolved through client-names files. */
  clientNames: string[];
  where: string;
}

/** The value of a `group` line: `NAME CIDR|IP ...`. */
export function parseGroupLine(value: string, where: string): GroupLine {
  const words = value.trim().split(/\s+/).filter((w) => w !== '');
  if (words.length < 2) throw new ConfigError(`${where}: expected "group NAME CIDR|IP ..." (e.g. group staff 192.168.1.0/24), found "group ${value.trim()}"`);
  const name = words[0]!.toLowerCase();
  if (!NAME.test(name)) throw new ConfigError(`${where}: "${words[0]}" is not a group name; use letters, digits, - and _`);
  if (name === DEFAULT_GROUP) throw new ConfigError(`${where}: "default" is the group of clients in no other group and takes no addresses; choose another name`);
  const members: Cidr[] = [];
  const clientNames: string[] = [];
  for (const w of words.slice(1)) {
    const c = parseCidr(w);
    if (!('error' in c)) members.push(c);
    else if (CLIENT_NAME.test(w.toLowerCase()) && !w.includes('/')) clientNames.push(w.toLowerCase().replace(/\.$/, ''));
    else throw new ConfigError(`${where}: group ${name}: ${c.error}; give an IP address, a network such as 192.168.1.0/24 or a client name`);
  }
  return { name, members, clientNames, where };
}

interface Entry {
  cidr: Cidr;
  group: number;
  where: string;
}

export class GroupTable {
  /** Group names; index 0 is `default`. */
  readonly names: string[] = [DEFAULT_GROUP];
  /** Networks of all groups, longest prefix first: the first that holds an address decides. */
  private readonly entries: Entry[] = [];
  private readonly memo = new Map<string, number>();
  /** Members given by client name: name -> its group and line. */
  private readonly byClientName = new Map<string, { group: number; where: string }>();
  /** Addresses of those names -> group; rebuilt when the names' version moves. */
  private byNamedAddress = new Map<string, number>();
  private clientNames: ClientNameSource | null = null;
  private namesVersion = -1;

  constructor(lines: readonly GroupLine[] = []) {
    const seen = new Map<string, Entry>();
    for (const line of lines) {
      let group = this.names.indexOf(line.name);
      if (group < 0) group = this.names.push(line.name) - 1;
      for (const clientName of line.clientNames ?? []) {
        const before = this.byClientName.get(clientName);
        if (before !== undefined && before.group !== group) {
          throw new ConfigError(`${line.where}: client ${clientName} is already in group ${this.names[before.group]} (${before.where}); a client belongs to one group`);
        }
        this.byClientName.set(clientName, { group, where: line.where });
      }
      for (const cidr of line.members) {
        const key = `${cidr.family}/${cidr.bytes.toString('hex')}/${cidr.prefix}`;
        const before = seen.get(key);
        if (before !== undefined) {
          if (before.group === group) continue;
          throw new ConfigError(`${line.where}: ${cidr.text} is already in group ${this.names[before.group]} (${before.where}); a network belongs to one group, use a longer prefix for exceptions`);
        }
        const entry = { cidr, group, where: line.where };
        seen.set(key, entry);
        this.entries.push(entry);
      }
    }
    this.entries.sort((a, b) => b.cidr.prefix - a.cidr.prefix);
  }

  get size(): number {
    return this.names.length;
  }

  /** The client names members given by name are looked up in; null: they match nobody. */
  useClientNames(source: ClientNameSource | null): void {
    this.clientNames = source;
    this.namesVersion = -1;
  }

  /** Client names used as members, with the line of each (for "client-names needed" errors). */
  get namedMembers(): ReadonlyMap<string, { group: number; where: string }> {
    return this.byClientName;
  }

  indexOf(name: string): number {
    return this.names.indexOf(name.toLowerCase());
  }

  /** The group index of a client address as Node reports it (`10.0.0.1`, `::ffff:10.0.0.1`, `fd00::5`). */
  groupOf(address: string): number {
    if (this.clientNames !== null && this.clientNames.version !== this.namesVersion) this.resolveNames();
    let group = this.memo.get(address);
    if (group === undefined) {
      group = this.lookup(address);
      if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
      this.memo.set(address, group);
    }
    return group;
  }

  /** The network that put `address` in its group, for `sinkhole check`; null for default. */
  matchedBy(address: string): { cidr: string; where: string } | null {
    if (this.clientNames !== null && this.clientNames.version !== this.namesVersion) this.resolveNames();
    if (this.byNamedAddress.has(address)) {
      const name = this.clientNames!.nameOf(address)!;
      return { cidr: name, where: this.byClientName.get(name)!.where };
    }
    const e = this.find(address);
    return e === null ? null : { cidr: e.cidr.text, where: e.where };
  }

  private lookup(address: string): number {
    return this.byNamedAddress.get(address) ?? this.find(address)?.group ?? 0;
  }

  /** The addresses of the names in group lines, as they are now; the memo starts again. */
  private resolveNames(): void {
    const source = this.clientNames!;
    const table = new Map<string, number>();
    for (const [name, { group }] of this.byClientName) for (const address of source.addressesOf(name)) table.set(address, group);
    this.byNamedAddress = table;
    this.namesVersion = source.version;
    this.memo.clear();
  }

  private find(address: string): Entry | null {
    if (this.entries.length === 0) return null;
    let bytes: Buffer;
    try {
      bytes = clientBytes(address);
    } catch {
      return null;
    }
    for (const e of this.entries) if (cidrContains(e.cidr, bytes, 0, bytes.length)) return e;
    return null;
  }
}
