// Block and allow from the admin API: the name is written to local.txt (block) or
// local.allow.txt (allow) in the blocklist folder, so the files stay the truth; the reload
// that follows (and the folder watcher, if the API's reload is missed) puts it in force.
// Blocking a name takes it out of local.allow.txt, allowing takes it out of local.txt, so
// the last action wins.
import { existsSync, readFileSync, renameSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';

export const BLOCK_FILE = 'local.txt';
export const ALLOW_FILE = 'local.allow.txt';

/** A domain name as a list line: letters, digits, '-', '_', dots; an optional leading "*.". */
const NAME = /^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** The name as it is written to the file, or an error for a person. */
export function listName(text: string | null): string | { error: string } {
  if (text === null || text.trim() === '') return { error: 'give name=NAME (a domain, e.g. icq.com), as a query parameter or in a JSON body' };
  const name = text.trim().toLowerCase().replace(/\.$/, '');
  if (name.length > 253 || !NAME.test(name)) return { error: `"${text}" is not a domain name (letters, digits, '-', dots; "*.example.com" for subdomains only)` };
  return name;
}

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n') : [];
}

/** Removes the lines that are exactly `name`; true when one was there. Written to a temporary file and renamed. */
function removeLine(path: string, name: string): boolean {
  const before = lines(path);
  const after = before.filter((l) => l.trim().toLowerCase() !== name);
  if (after.length === before.length) return false;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, after.join('\n'));
  renameSync(tmp, path);
  return true;
}

export interface ListEdit {
  name: string;
  file: string;
  /** False when the name was already in the file. */
  added: boolean;
  /** The other file it was taken out of, if it was there. */
  removedFrom: string | null;
}

/** Appends `name` to local.txt (block) or local.allow.txt (allow) in `dir`, and takes it out of the other one. */
export function addToLocalList(dir: string, kind: 'block' | 'allow', name: string): ListEdit {
  if (!existsSync(dir)) throw new Error(`blocklist folder ${dir} does not exist; create it or pass --blocklists DIR`);
  const file = join(dir, kind === 'block' ? BLOCK_FILE : ALLOW_FILE);
  const other = join(dir, kind === 'block' ? ALLOW_FILE : BLOCK_FILE);
  const removed = removeLine(other, name);
  const present = lines(file).some((l) => l.trim().toLowerCase() === name);
  if (!present) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : `# ${kind === 'block' ? 'Blocked' : 'Allowed'} by the administrator (sinkhole's admin API and console write here too).\n`;
    if (!existsSync(file)) writeFileSync(file, text);
    appendFileSync(file, (text === '' || text.endsWith('\n') ? '' : '\n') + name + '\n');
  }
  return { name, file, added: !present, removedFrom: removed ? other : null };
}
