// Client groups: `group staff 192.168.1.0/24 fd00:1::/64` puts clients into named groups by
// address. A client belongs to the group of its most specific matching network (longest
// prefix); a client in no group is in `default` (index 0). The answer for a client address
// is worked out once and kept in a small memo: clients repeat, parsing their text does not.
import { ConfigError } from '../../config/errors.js';
import { cidrContains, clientBytes, parseCidr, type Cidr } from './cidr.js';

export const DEFAULT_GROUP = 'default';
const NAME = /^[a-z0-9][a-z0-9_-]*$/;
const MEMO_LIMIT = 65536;

export interface GroupLine {
  name: string;
  members: Cidr[];
  where: string;
}

/** The value of a `group` line: `NAME CIDR|IP ...`. */
export function parseGroupLine(value: string, where: string): GroupLine {
  const words = value.trim().split(/\s+/).filter((w) => w !== '');
  if (words.length < 2) throw new ConfigError(`${where}: expected "group NAME CIDR|IP ..." (e.g. group staff 192.168.1.0/24), found "group ${value.trim()}"`);
  const name = words[0]!.toLowerCase();
  if (!NAME.test(name)) throw new ConfigError(`${where}: "${words[0]}" is not a group name; use letters, digits, - and _`);
  if (name === DEFAULT_GROUP) throw new ConfigError(`${where}: "default" is the group of clients in no other group and takes no addresses; choose another name`);
  const members = words.slice(1).map((w) => {
    const c = parseCidr(w);
    if ('error' in c) throw new ConfigError(`${where}: group ${name}: ${c.error}; give an IP address or a network such as 192.168.1.0/24`);
    return c;
  });
  return { name, members, where };
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

  constructor(lines: readonly GroupLine[] = []) {
    const seen = new Map<string, Entry>();
    for (const line of lines) {
      let group = this.names.indexOf(line.name);
      if (group < 0) group = this.names.push(line.name) - 1;
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

  indexOf(name: string): number {
    return this.names.indexOf(name.toLowerCase());
  }

  /** The group index of a client address as Node reports it (`10.0.0.1`, `::ffff:10.0.0.1`, `fd00::5`). */
  groupOf(address: string): number {
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
    const e = this.find(address);
    return e === null ? null : { cidr: e.cidr.text, where: e.where };
  }

  private lookup(address: string): number {
    return this.find(address)?.group ?? 0;
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
