// The DHCP hand-off, end to end, inside network namespaces this test creates and removes:
// a DHCP server (dnsmasq, DHCP only) hands out the sinkhole's address as the DNS server; a
// client gets a lease with udhcpc, writes its resolv.conf from it, and glibc's resolver
// (getent) then gets 127.0.0.1 for a blocked name and the upstream's address for others.
// No packet leaves the namespaces.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const ROOT = join(import.meta.dirname, '..', '..');
const inCi = process.env.CI === 'true';
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(command: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('sh', ['-c', command], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('DHCP hands out the sinkhole; a DHCP client resolves through it', async (t) => {
  const missing = ['ip', 'dnsmasq', 'udhcpc', 'getent'].filter((tool) => !have(tool));
  const root = process.getuid?.() === 0;
  if (missing.length > 0 || !root) {
    t.notOk(inCi, `CI runs this as root with ${['ip', 'dnsmasq', 'udhcpc'].join(', ')} installed`);
    t.comment(`skipped: needs root and ${missing.join(', ') || 'nothing else'}`);
    return;
  }
  const id = `${process.pid % 10000}`;
  const server = `skh-srv-${id}`;
  const client = `skh-cli-${id}`;
  const net = `10.153.${process.pid % 200}`;
  const work = mkdtempSync(join(tmpdir(), 'sinkhole-dhcp-'));
  const children: ChildProcess[] = [];
  // Cleanup runs whatever happened: processes by PID, then namespaces and files.
  t.teardown(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const pidFile of ['upstream.pid', 'dhcp.pid']) {
      try {
        process.kill(Number(readFileSync(join(work, pidFile), 'utf8').trim()), 'SIGKILL');
      } catch {
        // not started, or gone
      }
    }
    await sleep(200);
    sh(`ip netns del ${server}`);
    sh(`ip netns del ${client}`);
    rmSync(`/etc/netns/${client}`, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  for (const command of [
    `ip netns add ${server}`, `ip netns add ${client}`,
    `ip link add skh-s${id} netns ${server} type veth peer name skh-c${id} netns ${client}`,
    `ip -n ${server} addr add ${net}.1/24 dev skh-s${id}`,
    `ip -n ${server} link set skh-s${id} up`, `ip -n ${server} link set lo up`,
    `ip -n ${client} link set skh-c${id} up`, `ip -n ${client} link set lo up`,
  ]) {
    const r = sh(command);
    t.equal(r.status, 0, `${command} ${r.stderr}`);
    if (r.status !== 0) return;
  }

  // The upstream: a dnsmasq inside the server namespace answering *.allowed.test.
  const upstream = sh(`ip netns exec ${server} dnsmasq --port=5300 --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts ` +
    `--address=/allowed.test/192.0.2.77 --pid-file=${work}/upstream.pid`);
  t.equal(upstream.status, 0, `upstream ${upstream.stderr}`);

  // The sinkhole on the server's address, port 53, with the shipped lists.
  const sinkhole = spawn('ip', ['netns', 'exec', server, process.execPath, join(ROOT, 'dist', 'main', 'cli.js'), 'serve',
    '--listen', `${net}.1:53`, '--upstream', '127.0.0.1:5300', '--blocklists', join(ROOT, 'blocklists')], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(sinkhole);
  let log = '';
  sinkhole.stdout.on('data', (c: Buffer) => (log += c.toString()));
  for (let i = 0; i < 100 && !log.includes('"msg":"ready"'); i++) await sleep(50);
  t.match(log, /"msg":"ready"/, 'the sinkhole serves in the server namespace');

  // The DHCP server: dnsmasq with DNS off (--port=0), handing out the sinkhole as option 6.
  const dhcp = sh(`ip netns exec ${server} dnsmasq --port=0 --interface=skh-s${id} --bind-interfaces ` +
    `--dhcp-range=${net}.100,${net}.150,255.255.255.0,1h --dhcp-option=option:dns-server,${net}.1 ` +
    `--dhcp-leasefile=${work}/leases --pid-file=${work}/dhcp.pid --no-resolv --no-hosts`);
  t.equal(dhcp.status, 0, `dhcp server ${dhcp.stderr}`);

  // The client: udhcpc with a script that sets the address and writes resolv.conf from the
  // lease (into /etc/netns/CLIENT/, which "ip netns exec" mounts over /etc/resolv.conf).
  mkdirSync(`/etc/netns/${client}`, { recursive: true });
  writeFileSync(`/etc/netns/${client}/resolv.conf`, '# written by the DHCP client script\n');
  const script = join(work, 'udhcpc.script');
  writeFileSync(script, [
    '#!/bin/sh',
    'case "$1" in',
    '  bound|renew)',
    '    ip addr flush dev "$interface"',
    '    ip addr add "$ip/${mask:-24}" dev "$interface"',
    `    : > /etc/netns/${client}/resolv.conf`,
    `    for s in $dns; do echo "nameserver $s" >> /etc/netns/${client}/resolv.conf; done`,
    '    ;;',
    'esac',
    '',
  ].join('\n'), { mode: 0o755 });
  const lease = sh(`ip netns exec ${client} udhcpc -i skh-c${id} -n -q -f -t 5 -T 1 -s ${script}`);
  t.equal(lease.status, 0, `udhcpc got a lease ${lease.stderr}`);
  t.equal(readFileSync(`/etc/netns/${client}/resolv.conf`, 'utf8').trim(), `nameserver ${net}.1`, 'resolv.conf names the sinkhole');

  const blocked = sh(`ip netns exec ${client} getent ahostsv4 gateway.messenger.hotmail.com`);
  t.match(blocked.stdout, /^127\.0\.0\.1\s/m, 'getent: a blocked name resolves to 127.0.0.1');
  const blockedAny = sh(`ip netns exec ${client} getent hosts gateway.messenger.hotmail.com`);
  t.match(blockedAny.stdout, /^(::1|127\.0\.0\.1)\s+gateway\.messenger\.hotmail\.com/m, 'getent hosts: the sinkhole (IPv6 first: ::1)');
  const allowed = sh(`ip netns exec ${client} getent ahostsv4 www.allowed.test`);
  t.match(allowed.stdout, /^192\.0\.2\.77\s/m, 'getent: an allowed name resolves to the upstream\'s address');
  const logged = /"client":"10\.153\.\d+\.1\d\d".*"qname":"gateway\.messenger\.hotmail\.com"/;
  for (let i = 0; i < 40 && !logged.test(log); i++) await sleep(50);
  t.match(log, logged, 'the blocked attempt is logged with the client\'s leased address');
});
