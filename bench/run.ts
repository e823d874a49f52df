// `npm run bench`: sinkhole against dnsmasq on this machine, in the same run, each pinned
// to core 0 with dnsperf on core 1, rounds alternating which goes first. Prints markdown
// tables (and writes them to bench-results.md). Everything runs on 127.0.0.1 and every
// process it starts is stopped, also on Ctrl-C.
//
// Options: --quick, --rounds N, --duration S, --workers N, --only W1,W3, --skip-reload.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, runDnsperf, type PerfResult } from './dnsperf.js';
import { blockedNames, FORWARD_DOMAIN, HOT_SET, WORKLOADS, writeLists, writeQueries, type Workload } from './generate.js';
import { cpuSeconds, firstAnswer, haveTool, memoryMb, startPinned, startSinkhole, stop, stopAll } from './processes.js';
import { reloadBench } from './reload.js';

interface Options {
  rounds: number;
  duration: number;
  workers: number;
  only: Workload[];
  reload: boolean;
  quick: boolean;
  onlyReload: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { rounds: 2, duration: 10, workers: 1, only: ['W1', 'W2', 'W3', 'W4'], reload: true, quick: false, onlyReload: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') Object.assign(o, { quick: true, duration: 3 });
    else if (a === '--rounds') o.rounds = Number(value());
    else if (a === '--duration') o.duration = Number(value());
    else if (a === '--workers') o.workers = Number(value());
    else if (a === '--only') o.only = value().split(',') as Workload[];
    else if (a === '--skip-reload') o.reload = false;
    else if (a === '--only-reload') o.onlyReload = true;
    else throw new Error(`unknown option ${a} (options: --quick --rounds N --duration S --workers N --only W1,W3 --skip-reload --only-reload)`);
  }
  return o;
}

/** Seconds at the offered rate before latencies count. */
const LATENCY_WARM_S = 3;
const PORTS = { upstream: 15400, sinkhole: 15401, dnsmasq: 15402, probe: 15403 };
type ServerName = 'sinkhole' | 'dnsmasq';

function ensureTools(): void {
  const missing = ['dnsperf', 'dnsmasq', 'nsd', 'taskset'].filter((t) => !haveTool(t));
  if (missing.length === 0) return;
  const packages = missing.map((t) => (t === 'dnsmasq' ? 'dnsmasq-base' : t === 'taskset' ? 'util-linux' : t));
  if (process.getuid?.() === 0 && process.env.CI === 'true') {
    spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit' });
    if (['dnsperf', 'dnsmasq', 'nsd', 'taskset'].every(haveTool)) return;
  }
  throw new Error(`the benchmark needs ${missing.join(', ')}: apt-get install ${packages.join(' ')}`);
}

/**
 * The upstream both servers forward to: nsd, authoritative for FORWARD_DOMAIN with a
 * wildcard A and AAAA. It reads with recvmmsg and answers ~120k q/s on one core, so W4
 * measures the forwarders, not the upstream (a dnsmasq upstream dropped packets at its
 * socket at ~30k q/s). Response rate limiting is off: every query comes from 127.0.0.1.
 */
function startUpstream(dir: string) {
  const zone = join(dir, `${FORWARD_DOMAIN}.zone`);
  writeFileSync(zone, [`$ORIGIN ${FORWARD_DOMAIN}.`, '$TTL 3600', `@ IN SOA ns.${FORWARD_DOMAIN}. admin.${FORWARD_DOMAIN}. 1 3600 600 86400 3600`,
    `@ IN NS ns.${FORWARD_DOMAIN}.`, 'ns IN A 127.0.0.1', '* IN A 192.0.2.1', '* IN AAAA 2001:db8::1', ''].join('\n'));
  const conf = join(dir, 'nsd.conf');
  writeFileSync(conf, ['server:', '  ip-address: 127.0.0.1', `  port: ${PORTS.upstream}`, '  username: ""', '  chroot: ""',
    `  zonesdir: "${dir}"`, '  database: ""', `  zonelistfile: "${join(dir, 'nsd-zone.list')}"`, `  pidfile: "${join(dir, 'nsd.pid')}"`,
    `  xfrdfile: "${join(dir, 'nsd-xfrd.state')}"`, `  xfrdir: "${dir}"`, `  logfile: "${join(dir, 'nsd.log')}"`, '  server-count: 1',
    '  verbosity: 0', '  rrl-ratelimit: 0', '  rrl-whitelist-ratelimit: 0', 'remote-control:', '  control-enable: no',
    'zone:', `  name: ${FORWARD_DOMAIN}`, `  zonefile: ${zone}`, ''].join('\n'));
  return startPinned(1, 'nsd', ['-d', '-c', conf]);
}

function startServer(name: ServerName, lists: { sinkholeDir: string; dnsmasqConf: string }, dir: string, workers: number, admin = false) {
  if (name === 'sinkhole') {
    const args = ['--listen', `127.0.0.1:${PORTS.sinkhole}`, '--upstream', `127.0.0.1:${PORTS.upstream}`,
      '--blocklists', lists.sinkholeDir, '--cache-size', '10000', ...(workers > 1 ? ['--workers', String(workers)] : []),
      ...(admin ? ['--admin', `127.0.0.1:${PORTS.probe + 1}`] : [])];
    // Logging stays at its default (info): blocked queries are logged, as in production.
    return startSinkhole(workers > 1 ? '0,1' : 0, args, join(dir, 'sinkhole.log'));
  }
  return startPinned(0, 'dnsmasq', ['--keep-in-foreground', `--port=${PORTS.dnsmasq}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', `--server=127.0.0.1#${PORTS.upstream}`, '--cache-size=10000', '--dns-forward-max=10000',
    `--conf-file=${lists.dnsmasqConf}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`]);
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  ensureTools();
  // This process (it starts the servers and reads the results) stays off the servers' core.
  spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-'));
  const out: string[] = [];
  const say = (line = ''): void => {
    console.log(line);
    out.push(line);
  };
  try {
    mkdirSync(join(dir, 'lists'));
    const blocked = blockedNames(100_000);
    const lists = writeLists(dir, blocked);
    const upstream = startUpstream(dir);
    await firstAnswer(PORTS.upstream, `probe.${FORWARD_DOMAIN}`, performance.now());

    say(`## Benchmark: sinkhole vs dnsmasq (${new Date().toISOString().slice(0, 10)})`);
    say();
    say(`Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ${spawnSync('dnsmasq', ['--version']).stdout.toString().split('\n')[0]}, ` +
      `${spawnSync('dnsperf', ['-h']).stderr.toString().match(/Version [\d.]+/)?.[0] ?? 'dnsperf'}.`);
    say(`Each server pinned to core 0 with ${o.workers > 1 ? `${o.workers} workers on cores 0-1` : 'one process'}; dnsperf (8 clients, 2,000 outstanding) ` +
      `and the upstream (nsd answering *.${FORWARD_DOMAIN}) on core 1. 100,000 blocked domains. Cache 10,000 entries for both. ` +
      `sinkhole logs at its default level (blocked queries on). ${o.duration} s per run, ${o.rounds} rounds, order alternating.`);
    say();

    if (o.onlyReload) o.only = [];
    // The upstream's own ceiling, so that W4 is known not to measure it.
    const ceilingFile = join(dir, 'ceiling.txt');
    writeQueries(ceilingFile, 'W4', blocked, o.duration * 150_000, 'ceiling');
    const ceiling = await runDnsperf(0, PORTS.upstream, ceilingFile, Math.min(o.duration, 5));
    say(`Upstream alone (dnsperf on the other core): ${fmt(ceiling.qps)} q/s.`);
    say();

    const results = new Map<string, PerfResult[]>();
    const servers: ServerName[] = ['sinkhole', 'dnsmasq'];
    for (let round = 1; round <= (o.only.length > 0 ? o.rounds : 0); round++) {
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      for (const name of order) {
        const server = startServer(name, lists, dir, o.workers);
        const port = PORTS[name];
        await firstAnswer(port, 'messenger.hotmail.com', performance.now());
        const warm = join(dir, 'warm.txt');
        writeFileSync(warm, HOT_SET.flatMap((n) => [`${n} A`, `${n} AAAA`]).join('\n') + '\n');
        await runDnsperf(1, port, warm, 1);
        for (const w of o.only) {
          const file = join(dir, `${w}-${name}-${round}.txt`);
          writeQueries(file, w, blocked, o.duration * 150_000, `${name[0]}${round}`);
          const cpuBefore = cpuSeconds(server.pid!);
          const r = await runDnsperf(1, port, file, o.duration);
          const cpu = cpuSeconds(server.pid!) - cpuBefore;
          (r as PerfResult & { cpuUsPerQuery?: number }).cpuUsPerQuery = (cpu * 1e6) / Math.max(1, r.completed);
          results.set(`${w}/${name}/${round}`, [...(results.get(`${w}/${name}/${round}`) ?? []), r]);
        }
        await stop(server);
      }
    }

    if (o.only.length > 0) {
    say('### Throughput (queries per second; lost queries; CPU µs per answered query)');
    say();
    const header = ['workload', ...Array.from({ length: o.rounds }, (_, i) => [`sinkhole r${i + 1}`, `dnsmasq r${i + 1}`, `ratio r${i + 1}`]).flat()];
    say(`| ${header.join(' | ')} |`);
    say(`|${header.map(() => '---').join('|')}|`);
    for (const w of o.only) {
      const cells = [`${w} ${WORKLOADS[w]}`];
      for (let round = 1; round <= o.rounds; round++) {
        const s = results.get(`${w}/sinkhole/${round}`)![0]! as PerfResult & { cpuUsPerQuery: number };
        const d = results.get(`${w}/dnsmasq/${round}`)![0]! as PerfResult & { cpuUsPerQuery: number };
        cells.push(`${fmt(s.qps)} (lost ${s.lost}; ${fmt(s.cpuUsPerQuery, 1)} µs)`, `${fmt(d.qps)} (lost ${d.lost}; ${fmt(d.cpuUsPerQuery, 1)} µs)`, `${fmt(s.qps / d.qps, 2)}×`);
      }
      say(`| ${cells.join(' | ')} |`);
    }
    say();
    }

    if (o.only.includes('W3')) {
      // The admin API's statistics (and the dashboard they feed) cost a little per query.
      say('### Cost of the admin API and statistics (--admin) on W3');
      say();
      say('| round | without --admin | with --admin | with / without |');
      say('|---|---|---|---|');
      for (let round = 1; round <= o.rounds; round++) {
        const qps: number[] = [];
        for (const admin of round % 2 ? [false, true] : [true, false]) {
          const server = startServer('sinkhole', lists, dir, o.workers, admin);
          await firstAnswer(PORTS.sinkhole, 'messenger.hotmail.com', performance.now());
          await runDnsperf(1, PORTS.sinkhole, join(dir, 'warm.txt'), 1);
          const file = join(dir, `admin-${admin}-${round}.txt`);
          writeQueries(file, 'W3', blocked, o.duration * 150_000, `a${admin ? 1 : 0}${round}`);
          qps[admin ? 1 : 0] = (await runDnsperf(1, PORTS.sinkhole, file, o.duration)).qps;
          await stop(server);
        }
        say(`| ${round} | ${fmt(qps[0]!)} q/s | ${fmt(qps[1]!)} q/s | ${fmt(qps[1]! / qps[0]!, 2)}× |`);
      }
      say();
    }

    if (!o.onlyReload) {
    say(`### Latency on W3 at a fixed offered rate (ms): the last ${o.quick ? 3 : 5} s of each run of ${LATENCY_WARM_S + (o.quick ? 3 : 5)} s`);
    say();
    say('| rate | server | p50 | p99 | max | lost |');
    say('|---|---|---|---|---|---|');
    for (const rate of [5000, 40000]) {
      for (const name of servers) {
        const server = startServer(name, lists, dir, o.workers);
        await firstAnswer(PORTS[name], 'messenger.hotmail.com', performance.now());
        await runDnsperf(1, PORTS[name], join(dir, 'warm.txt'), 1);
        // One steady run: the first LATENCY_WARM_S seconds warm the server (and the load: a
        // new dnsperf sends its first queries in a burst) and are left out of the percentiles.
        const seconds = o.quick ? 3 : 5;
        const file = join(dir, `lat-${rate}-${name}.txt`);
        writeQueries(file, 'W3', blocked, rate * (LATENCY_WARM_S + seconds) + 1000, `lat${rate}${name[0]}`);
        const r = await runDnsperf(1, PORTS[name], file, LATENCY_WARM_S + seconds, { rate, latencies: true, skipFirst: rate * LATENCY_WARM_S });
        say(`| ${fmt(rate)}/s | ${name} | ${fmt(percentile(r.latencies, 50), 2)} | ${fmt(percentile(r.latencies, 99), 2)} | ${fmt(r.latencies.at(-1) ?? NaN, 2)} | ${r.lost} |`);
        await stop(server);
      }
    }
    say();

    say('### Memory and time to first answer');
    say();
    say('| rules | server | first answer after start | RSS after 1 s |');
    say('|---|---|---|---|');
    for (const count of [100_000, 1_000_000]) {
      const sub = join(dir, `mem-${count}`);
      mkdirSync(join(sub, 'lists'), { recursive: true });
      const l = writeLists(sub, count === 100_000 ? blocked : blockedNames(count));
      for (const name of servers) {
        const t0 = performance.now();
        const server = startServer(name, l, sub, 1);
        const ms = await firstAnswer(PORTS[name], 'messenger.hotmail.com', t0);
        await new Promise((r) => setTimeout(r, 1000));
        say(`| ${fmt(count)} | ${name} | ${fmt(ms / 1000, 2)} s | ${memoryMb(server.pid!).rss} MB |`);
        await stop(server);
      }
    }
    say();
    }

    if (o.reload) {
      const sub = join(dir, 'reload');
      mkdirSync(join(sub, 'lists'), { recursive: true });
      const l = writeLists(sub, blockedNames(1_000_000));
      const r = await reloadBench({ dir: sub, listsDir: l.sinkholeDir, rules: 1_000_000, port: PORTS.probe,
        upstream: `127.0.0.1:${PORTS.upstream}`, rate: 5000 });
      say('### Reload of a 1,000,000-rule folder under a steady 5,000 q/s load');
      say();
      say('| reload time | queries during reload | lost | p99 | worst | RSS before | RSS peak during reload |');
      say('|---|---|---|---|---|---|---|');
      say(`| ${fmt(r.reloadMs)} ms | ${fmt(r.sent)} | ${r.lost} | ${fmt(r.p99Ms, 2)} ms | ${fmt(r.worstMs, 2)} ms | ${r.rssBeforeMb} MB | ${r.rssPeakMb} MB |`);
      say();
    }
    await stop(upstream);
    writeFileSync('bench-results.md', out.join('\n') + '\n');
    console.log('(written to bench-results.md)');
  } finally {
    stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  stopAll();
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
