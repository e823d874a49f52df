// The README's firewall rules are the files in docs/firewall/, and those files are valid for
// the real tools: `nft -c` and `iptables-restore --test` check them without applying anything
// (inside a throw-away network namespace, so that even a tool bug cannot touch this machine's
// firewall).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { needTool } from '../helpers/tls-peers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'docs', 'firewall');
const FILES = {
  'sinkhole.nft': { tool: 'nft', pkg: 'nftables', check: (f: string) => ['nft', '-c', '-f', f] },
  'iptables.rules': { tool: 'iptables-restore', pkg: 'iptables', check: (f: string) => ['iptables-restore', '--test', f] },
  'ip6tables.rules': { tool: 'ip6tables-restore', pkg: 'iptables', check: (f: string) => ['ip6tables-restore', '--test', f] },
} as const;

/** How to enter a new, empty network namespace: as root, or as a user through a user namespace. */
const NETNS = [['unshare', '-n'], ['unshare', '-rn']].find((p) => spawnSync(p[0]!, [...p.slice(1), 'true']).status === 0) ?? [];

/** Runs the check in a throw-away network namespace (or as it is where none can be made). */
function check(argv: string[]): { status: number | null; output: string } {
  const [command, ...args] = [...NETNS, ...argv];
  const r = spawnSync(command!, args, { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** The bodies of the README's fenced code blocks. */
function fencedBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

t.test('every README firewall snippet is a file of docs/firewall, byte for byte', async (t) => {
  const blocks = fencedBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  for (const name of Object.keys(FILES)) {
    const file = readFileSync(join(DIR, name), 'utf8');
    t.ok(blocks.includes(file), `README.md has a fenced block equal to docs/firewall/${name}`);
  }
});

t.test('the rules cover IPv4 and IPv6, plain DNS, DoT and DoQ', async (t) => {
  const nft = readFileSync(join(DIR, 'sinkhole.nft'), 'utf8');
  t.match(nft, /^table inet sinkhole \{/m, 'one inet table: IPv4 and IPv6');
  t.match(nft, /ip6 daddr != fd00::2 meta l4proto \{ tcp, udp \} th dport \{ 53, 853 \} reject/, 'IPv6: 53 and 853, TCP and UDP');
  t.match(nft, /ip daddr != 192\.168\.1\.2 meta l4proto \{ tcp, udp \} th dport \{ 53, 853 \} reject/, 'IPv4: 53 and 853, TCP and UDP');
  for (const [name, address] of [['iptables.rules', '192.168.1.2'], ['ip6tables.rules', 'fd00::2']] as const) {
    const rules = readFileSync(join(DIR, name), 'utf8');
    for (const proto of ['udp', 'tcp']) t.match(rules, `-A FORWARD -i lan0 ! -d ${address} -p ${proto} -m multiport --dports 53,853 -j REJECT`, `${name}: ${proto} 53 and 853`);
    t.match(rules, `-A FORWARD -i lan0 -s ${address} -j ACCEPT`, `${name}: the sinkhole's own upstream queries pass`);
  }
});

for (const [name, spec] of Object.entries(FILES)) {
  t.test(`${name} passes ${spec.check('FILE').join(' ')}, and a broken copy does not`, async (t) => {
    if (!needTool(t, spec.tool, spec.pkg)) return;
    const ok = check(spec.check(join(DIR, name)));
    t.equal(ok.status, 0, `${name}: ${ok.output || 'accepted'}`);
    // The check can fail: the same file with an address that is not one.
    const dir = mkdtempSync(join(tmpdir(), 'sinkhole-fw-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const broken = join(dir, name);
    writeFileSync(broken, readFileSync(join(DIR, name), 'utf8').replaceAll('192.168.1.2', '192.168.1.300').replaceAll('fd00::2', 'fd00::2::9'));
    const bad = check(spec.check(broken));
    t.not(bad.status, 0, `a copy with a bad address is refused (${bad.output.split('\n')[0]})`);
  });
}

t.test('ip6tables refuses the IPv4 rules: each file is checked by the tool of its family', async (t) => {
  if (!needTool(t, 'ip6tables-restore', 'iptables')) return;
  t.not(check(['ip6tables-restore', '--test', join(DIR, 'iptables.rules')]).status, 0);
});
