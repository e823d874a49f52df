// A policy snapshot: the files of the primary's policy (its blocklist folder today; groups,
// schedules and pauses are more parts of the same kind), each stored by the SHA-256 of its
// content, and a manifest naming them. The manifest carries a checksum over its own
// entries, and every file is checked against its hash: a snapshot that is corrupt or
// half-written in Redis is rejected whole.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { scanFolder } from '../stages/policy/load.js';

export interface Manifest {
  version: number;
  /** Who published it and when (ISO time). */
  node: string;
  at: string;
  /** Relative path (`blocklists/ads.txt`) -> SHA-256 of its content, hex. */
  files: Record<string, string>;
  /** SHA-256 over the sorted `path hash` lines: a manifest that lost or changed an entry fails. */
  checksum: string;
}

/** The parts a snapshot may hold, and the folder each is written to under the state dir. */
export const PARTS = ['blocklists'] as const;

/** A path a replica may write: a known part, then one plain file name (no `..`, no `/`). */
const SAFE_PATH = /^(blocklists)\/[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.txt$/;

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function filesChecksum(files: Record<string, string>): string {
  return sha256(Object.keys(files).sort().map((p) => `${p} ${files[p]}\n`).join(''));
}

export interface LocalFile {
  path: string;
  content: Buffer;
  hash: string;
}

/** The folder's *.txt files as snapshot entries (the same files the policy loads). */
export async function readPolicyFolder(dir: string, part: (typeof PARTS)[number] = 'blocklists'): Promise<LocalFile[]> {
  const { paths } = await scanFolder(dir);
  const files: LocalFile[] = [];
  for (const p of paths) {
    const content = await readFile(p).catch(() => null);
    if (content === null) continue;
    const path = `${part}/${basename(p)}`;
    if (!SAFE_PATH.test(path)) continue;
    files.push({ path, content, hash: sha256(content) });
  }
  return files;
}

/** Why a manifest read from Redis cannot be used, or null when it can. Only data is read: paths are checked. */
export function manifestProblem(m: unknown, version: number): string | null {
  if (typeof m !== 'object' || m === null) return 'not a JSON object';
  const x = m as Partial<Manifest>;
  if (x.version !== version) return `says version ${String(x.version)}, expected ${version}`;
  if (typeof x.files !== 'object' || x.files === null) return 'no file list';
  for (const [path, hash] of Object.entries(x.files)) {
    if (!SAFE_PATH.test(path)) return `file path "${path.slice(0, 80)}" is not allowed`;
    if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return `bad hash for ${path}`;
  }
  if (x.checksum !== filesChecksum(x.files)) return 'checksum does not match its file list';
  return null;
}
