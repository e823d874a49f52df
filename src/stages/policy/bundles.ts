// Bundles: one blocklist file per messenger family. Enabled bundles are the *.txt files at
// the top of the blocklist folder; disabled ones wait in its available/ subfolder. Enabling
// and disabling move the file between the two, so an admin's edits travel with it, and the
// running server's folder watcher reloads by itself.
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../config/config.js';
import { parseListText } from './list-file.js';

export interface Bundle {
  name: string;
  enabled: boolean;
  path: string;
  /** The first comment line of the file's header. */
  description: string;
  rules: number;
}

const NAME = /^[a-z0-9][a-z0-9._-]*$/i;

function describe(path: string, enabled: boolean): Bundle {
  const text = readFileSync(path, 'utf8');
  const parsed = parseListText(path, text);
  const first = /^\s*[#!]\s*(.+)$/m.exec(text);
  return { name: parsed.bundle, enabled, path, description: first ? first[1]!.trim() : '', rules: parsed.keys.length + parsed.ipRules.length };
}

export function listBundles(dir: string): Bundle[] {
  const read = (folder: string): string[] => {
    try {
      return readdirSync(folder).filter((n) => n.endsWith('.txt') && !n.startsWith('.')).sort();
    } catch {
      return [];
    }
  };
  if (!existsSync(dir)) throw new ConfigError(`cannot read blocklist folder ${dir}: ENOENT; create it or pass --blocklists DIR`);
  return [
    ...read(dir).map((n) => describe(join(dir, n), true)),
    ...read(join(dir, 'available')).map((n) => describe(join(dir, 'available', n), false)),
  ];
}

function checkName(name: string): string {
  const bare = name.replace(/\.txt$/, '');
  if (!NAME.test(bare)) throw new ConfigError(`"${name}" is not a bundle name (see "sinkhole list")`);
  return `${bare}.txt`;
}

/** Moves available/NAME.txt up into the folder. Returns what was done, for the terminal. */
export function enableBundle(dir: string, name: string): string {
  const file = checkName(name);
  const enabled = join(dir, file);
  const available = join(dir, 'available', file);
  if (existsSync(enabled)) return `${file.slice(0, -4)} is already enabled (${enabled})`;
  if (!existsSync(available)) throw new ConfigError(`no bundle "${name}" in ${join(dir, 'available')} (see "sinkhole list")`);
  renameSync(available, enabled);
  return `enabled ${file.slice(0, -4)}: ${available} -> ${enabled}; a running server reloads by itself`;
}

/** Moves NAME.txt down into available/. */
export function disableBundle(dir: string, name: string): string {
  const file = checkName(name);
  const enabled = join(dir, file);
  const available = join(dir, 'available', file);
  if (!existsSync(enabled)) {
    if (existsSync(available)) return `${file.slice(0, -4)} is already disabled (${available})`;
    throw new ConfigError(`no bundle "${name}" in ${dir} (see "sinkhole list")`);
  }
  if (existsSync(available)) throw new ConfigError(`${available} exists already; remove or rename it, then disable again`);
  if (!existsSync(join(dir, 'available'))) throw new ConfigError(`${join(dir, 'available')} does not exist; create it, then disable again`);
  renameSync(enabled, available);
  return `disabled ${file.slice(0, -4)}: ${enabled} -> ${available}; a running server reloads by itself`;
}

export function formatBundles(bundles: Bundle[]): string {
  const width = Math.max(4, ...bundles.map((b) => b.name.length));
  const lines = [`${'NAME'.padEnd(width)}  STATE     RULES  DESCRIPTION`];
  for (const b of bundles) {
    lines.push(`${b.name.padEnd(width)}  ${(b.enabled ? 'enabled' : 'disabled').padEnd(8)}  ${String(b.rules).padStart(5)}  ${b.description}`);
  }
  return lines.join('\n');
}
