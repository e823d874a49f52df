// A policy snapshot: the files of the primary's policy (its blocklist folder with available/,
// its list-url copies, its pauses; groups and schedules stay in each node's config), each stored by the SHA-256 of its
// content, and a manifest naming them. The manifest carries a checksum over its own
// entries, and every file is checked against its hash: a snapshot that is corrupt or
// half-written in Redis is rejected whole.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
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

/**
 * The parts a snapshot may hold, each with the snapshot path of its files and where a
 * replica writes them under STATE_DIR/fleet/:
 * - `blocklists/NAME.txt`: the enabled bundles and allow lists (-> `blocklists/NAME.txt`);
 * - `available/NAME.txt`: the disabled bundles groups may name (-> `blocklists/available/NAME.txt`);
 * - `lists/NAME.txt`, `lists/NAME.catalogue/ID.txt`: the list-url subscriptions the primary fetched (-> `lists/…`);
 * - `state/pause.json`: the pauses in force (-> `pause.json`, handed to the pause state).
 */
export const PARTS = ['blocklists', 'available', 'lists', 'state'] as const;

const NAME = '[A-Za-z0-9][A-Za-z0-9._-]{0,200}';
/** A path a replica may write: a known part, then plain file names (no `..`, no other folder). */
const SAFE_PATH = new RegExp(`^(?:(?:blocklists|available|lists)/${NAME}\\.txt|lists/${NAME}\\.catalogue/${NAME}\\.txt|state/pause\\.json)$`);

/** Where a snapshot path is written, relative to STATE_DIR/fleet/ (the path was checked by SAFE_PATH). */
export function localPath(path: string): string {
  if (path.startsWith('available/')) return `blocklists/${path}`;
  if (path === 'state/pause.json') return 'pause.json';
  return path;
}

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

/** What a primary publishes: its folder (with available/), its stored subscriptions, its pause file. */
export interface PolicySources {
  blocklists: string;
  /** The stored list-url copies (Subscriptions.lists()) and the folder they live in (STATE_DIR/lists). */
  lists?: { dir: string; paths: readonly string[] };
  /** STATE_DIR/pause.json; null: pauses are not shared (no state directory). */
  pauseFile?: string | null;
}

/** The folder's *.txt files as snapshot entries under `part` (the same files the policy loads). */
export async function readPolicyFolder(dir: string, part: 'blocklists' | 'available' = 'blocklists'): Promise<LocalFile[]> {
  const { paths } = await scanFolder(dir);
  const files: LocalFile[] = [];
  for (const p of paths) await addFile(files, `${part}/${basename(p)}`, p);
  return files;
}

/** Every file of a primary's policy, as snapshot entries. */
export async function readPolicySources(s: PolicySources): Promise<LocalFile[]> {
  const files = await readPolicyFolder(s.blocklists);
  files.push(...(await readPolicyFolder(join(s.blocklists, 'available'), 'available').catch(() => [])));
  for (const p of s.lists?.paths ?? []) {
    const rel = relative(s.lists!.dir, p).split(sep).join('/');
    await addFile(files, `lists/${rel}`, p);
  }
  if (s.pauseFile) await addFile(files, 'state/pause.json', s.pauseFile);
  return files;
}

async function addFile(files: LocalFile[], path: string, file: string): Promise<void> {
  if (!SAFE_PATH.test(path)) return;
  const content = await readFile(file).catch(() => null);
  if (content === null) return;
  files.push({ path, content, hash: sha256(content) });
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
