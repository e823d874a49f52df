// A checkout of this tree as a release would be, in a temporary folder: systemd/, blocklists/,
// docs/man and package.json committed to a fresh git repository, dist/ built, node_modules linked.
// There is no src/, so systemd/install.sh installs dist/ as it is, without building.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

export function git(dir: string, ...args: string[]): string {
  const r = spawnSync('git', ['-C', dir, '-c', 'user.name=test', '-c', 'user.email=test@example.org', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export function sourceTree(t: { teardown(fn: () => unknown): void }): string {
  const src = mkdtempSync(join(tmpdir(), 'sinkhole-src-'));
  t.teardown(() => rmSync(src, { recursive: true, force: true }));
  for (const part of ['systemd', 'blocklists', 'dist', 'package.json', 'package-lock.json', 'docs/man']) {
    if (existsSync(join(ROOT, part))) cpSync(join(ROOT, part), join(src, part), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
  // package.json names the optional native addon as file:src/net/batch-udp.
  if (existsSync(join(ROOT, 'src/net/batch-udp'))) {
    mkdirSync(join(src, 'src/net'), { recursive: true });
    symlinkSync(join(ROOT, 'src/net/batch-udp'), join(src, 'src/net/batch-udp'));
  }
  writeFileSync(join(src, '.gitignore'), 'dist\nnode_modules\nsrc\n');
  git(src, 'init', '-q');
  git(src, 'add', '.gitignore', 'systemd', 'blocklists', 'package.json', 'package-lock.json', ...(existsSync(join(src, 'docs')) ? ['docs'] : []));
  git(src, 'commit', '-q', '-m', 'release');
  return src;
}
