// `npm run bench`: sinkhole against dnsmasq and Unbound (one thread) on this machine, in the
// same run, each pinned to core 0 with dnsperf and the upstream on core 1, rounds rotating
// which goes first. Prints markdown tables, writes them to bench-results.md and, after a
// full run, into docs/performance.md. Everything runs on 127.0.0.1 and every process it
// starts is stopped, also on Ctrl-C. After the comparison, the feature-cost sections
// (sections.ts: groups, history, fleet, encrypted, workers) measure sinkhole against itself
// in other configurations, side by side in the same run. Options: see USAGE.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { otherRcodes, percentile, runDnsperf, type PerfOptions } from './dnsperf.js';
import { fmt, waitShare, WAIT_TOLERATED, type Bench, type Measured, type Ports } from './compare.js';
import { encryptedSection, fleetSection, groupsSection, historySection, SECTION_TOOLS, SECTIONS, workersSection, type Section } from './sections.js';
import { blockedNames, FORWARD_DOMAIN, HOT_SET, WORKLOADS, writeLists, writeQueries, type Lists, type Workload } from './generate.js';
import { DOCS, writeDocs } from './docs.js';
import { answerIs, cpuSeconds, firstAnswer, haveTool, memoryMb, settle, startBenchScript, startPinned, startSinkhole, stop, stopAll } from './processes.js';
import { reloadBench } from './reload.js';
import { dnsmasqArgs, UPSTREAM_A, writeNsdConfig, writeUnboundConfig } from './servers.js';

/** Every part of a run, in order; --sections picks some. */
const PARTS = ['compare', 'latency', 'memory', 'reload', ...SECTIONS] as const;
type Part = (typeof PARTS)[number];

const USAGE = '--quick (1 round of 2 s, smaller tables: a smoke run), --rounds N, --duration S, --outstanding N, --burst N, ' +
  `--workers N, --only W1,W3, --skip-reload, --only-reload, --sections ${PARTS.join(',')} (only these parts), --port-base N, --no-docs`;

interface Options {
  rounds: number;
  duration: number;
  /** Queries outstanding in the throughput runs (dnsperf -q). */
  outstanding: number;
  /** Queries outstanding in the burst runs. */
  burst: number;
  workers: number;
  only: Workload[];
  quick: boolean;
  /** The parts of the run to do (all unless --sections, --skip-reload or --only-reload says otherwise). */
  parts: Set<Part>;
  portBase: number;
  docs: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    rounds: 2, duration: 10, outstanding: 200, burst: 2000, workers: 1, only: ['W1', 'W2', 'W3', 'W4'], quick: false,
    parts: new Set(PARTS), portBase: 15400, docs: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const number = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number (options: ${USAGE})`);
      return v;
    };
    if (a === '--quick') Object.assign(o, { quick: true, rounds: 1, duration: 2 });
    else if (a === '--rounds') o.rounds = number();
    else if (a === '--duration') o.duration = number();
    else if (a === '--outstanding') o.outstanding = number();
    else if (a === '--burst') o.burst = number();
    else if (a === '--workers') o.workers = number();
    else if (a === '--only') o.only = (argv[++i] ?? '').split(',').filter((w): w is Workload => w in WORKLOADS);
    else if (a === '--skip-reload') o.parts.delete('reload');
    else if (a === '--only-reload') o.parts = new Set(['reload']);
    else if (a === '--sections') {
      const names = (argv[++i] ?? '').split(',').filter(Boolean);
      const unknown = names.filter((n) => !(PARTS as readonly string[]).includes(n));
      if (names.length === 0 || unknown.length > 0) throw new Error(`--sections: unknown part ${unknown.join(', ') || '(none given)'} (parts: ${PARTS.join(', ')})`);
      o.parts = new Set(names as Part[]);
    }
    else if (a === '--port-base') o.portBase = number();
    else if (a === '--no-docs') o.docs = false;
    else throw new Error(`unknown option ${a} (options: ${USAGE})`);
  }
  if (!o.parts.has('compare')) o.only = [];
  return o;
}

/** Seconds at the offered rate before latencies count. */
const LATENCY_WARM_S = 3;
/** Queries a second a dnsperf query file is made for (more than any server here answers). */
const FILE_RATE = 150_000;
/** The --upstream-port-reuse of the W4 reuse run (beside the bare relay). */
const PORT_REUSE = 64;
/**
 * dnsperf waits 2 s for each lost query, holding one of its outstanding slots. Past this
 * share of the run's slot-seconds spent waiting, a throughput figure measures that wait
 * more than the server: the depth is too great for that server.
 */

type ServerName = 'sinkhole' | 'dnsmasq' | 'unbound';
const SERVERS: ServerName[] = ['sinkhole', 'dnsmasq', 'unbound'];
const LABEL: Record<ServerName, string> = { sinkhole: 'sinkhole', dnsmasq: 'dnsmasq', unbound: 'Unbound (1 thread)' };
const TOOLS: Record<string, string> = { dnsperf: 'dnsperf', dnsmasq: 'dnsmasq-base', nsd: 'nsd', unbound: 'unbound', taskset: 'util-linux' };

/**
 * Every tool the chosen parts need, checked before anything starts: a missing one stops
 * the run with the package to install (a section is never skipped silently).
 */
function ensureTools(parts: Set<Part>): void {
  const tools: Record<string, string> = { ...TOOLS };
  for (const s of SECTIONS) if (parts.has(s)) Object.assign(tools, SECTION_TOOLS[s]);
  const missing = Object.keys(tools).filter((t) => !haveTool(t));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => tools[t]!))];
  if (process.getuid?.() === 0 && process.env.CI === 'true') {
    spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit' });
    if (Object.keys(tools).every(haveTool)) return;
  }
  const needers = SECTIONS.filter((s) => parts.has(s) && Object.keys(SECTION_TOOLS[s]).some((t) => missing.includes(t)));
  throw new Error(`the benchmark needs ${missing.join(', ')}${needers.length > 0 ? ` (for the ${needers.join(', ')} section${needers.length > 1 ? 's' : ''})` : ''}: ` +
    `apt-get install ${packages.join(' ')} (then "systemctl disable --now nsd unbound redis-server dnsdist": the benchmark starts its own ` +
    `on high ports), or leave the section out with --sections`);
}

/** The upstream every server forwards to: nsd on core 1 (bench/servers.ts). */
function startUpstream(dir: string, ports: Ports) {
  return startPinned(1, 'nsd', ['-d', '-c', writeNsdConfig(dir, ports.upstream)]);
}

/**
 * sinkhole as every table runs it: one listener, the upstream, the lists, a 10,000-entry
 * cache and a state directory in the run's temp folder (history.sqlite goes there).
 */
function sinkholeArgs(dir: string, ports: Ports, o: { listsDir?: string; upstream?: string[]; stateDir?: string } = {}): string[] {
  return ['--listen', `127.0.0.1:${ports.sinkhole}`, ...(o.upstream ?? ['--upstream', `127.0.0.1:${ports.upstream}`]),
    '--blocklists', o.listsDir ?? join(dir, 'lists'), '--cache-size', '10000', '--state-dir', o.stateDir ?? join(dir, 'state')];
}

/** `extra`: more options for sinkhole (the others take none). */
function startServer(name: ServerName, lists: Lists, dir: string, ports: Ports, workers: number, admin = false, extra: string[] = []) {
  if (name === 'sinkhole') {
    const args = [...sinkholeArgs(dir, ports, { listsDir: lists.sinkholeDir, stateDir: join(dir, 'state') }), ...(workers > 1 ? ['--workers', String(workers)] : []),
      ...(admin ? ['--admin', `127.0.0.1:${ports.probe + 1}`] : []), ...extra];
    // Logging stays at its default (info): blocked queries are logged, as in production.
    return startSinkhole(workers > 1 ? '0,1' : 0, args, join(dir, 'sinkhole.log'));
  }
  if (name === 'unbound') return startPinned(0, 'unbound', ['-d', '-c', writeUnboundConfig(dir, lists.unboundConf, ports.unbound, ports.upstream)], join(dir, 'unbound.out'));
  return startPinned(0, 'dnsmasq', dnsmasqArgs(dir, lists.dnsmasqConf, ports.dnsmasq, ports.upstream));
}

/**
 * Before any run, each server must do the work its figures will be read as: a listed name
 * answered 127.0.0.1 by the server itself, a name under the upstream's zone answered with
 * the upstream's wildcard address (so it was forwarded). A server that answers otherwise
 * stops the benchmark: its throughput would measure something else.
 */
async function checkAnswers(name: ServerName, port: number, blocked: string[]): Promise<void> {
  const checks: [string, string, string][] = [
    [`check.${blocked[0]}`, '127.0.0.1', 'a listed name'],
    [`check-${name}-${Date.now()}.${FORWARD_DOMAIN}`, UPSTREAM_A, 'a name forwarded to the upstream'],
  ];
  for (const [qname, want, what] of checks) {
    if (!(await answerIs(port, qname, want))) {
      throw new Error(`${LABEL[name]} did not answer ${qname} A (${what}) with ${want}: its figures would not measure that work; ` +
        (name === 'sinkhole' ? 'its arguments come from sinkholeArgs in bench/run.ts' : 'its configuration comes from bench/servers.ts, checked by test/bench/servers.test.ts'));
    }
  }
}

function versionLine(): string {
  const first = (cmd: string, args: string[], re: RegExp): string => {
    const r = spawnSync(cmd, args);
    return re.exec(`${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}`)?.[0] ?? cmd;
  };
  return [`Node ${process.version}`, first('dnsmasq', ['--version'], /Dnsmasq version [\d.]+/), first('unbound', ['-V'], /Version [\d.]+/).replace('Version', 'Unbound'),
    first('nsd', ['-v'], /NSD version [\d.]+/), first('dnsperf', ['-h'], /Version [\d.]+/).replace('Version', 'dnsperf')].join(', ');
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  ensureTools(o.parts);
  const t0 = performance.now();
  const base = o.portBase;
  const ports: Ports = { upstream: base, sinkhole: base + 1, dnsmasq: base + 2, unbound: base + 3, probe: base + 4, relay: base + 6 };
  // This process (it starts the servers and reads the results) stays off the servers' core.
  spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-'));
  const out: string[] = [];
  const say = (line = ''): void => {
    console.log(line);
    out.push(line);
  };
  /** A started server, answering, its cache warmed with the hot set. */
  const ready = async (name: ServerName, lists: Lists, sub = dir, admin = false, extra: string[] = []) => {
    const server = startServer(name, lists, sub, ports, o.workers, admin, extra);
    await firstAnswer(ports[name], 'messenger.hotmail.com', performance.now());
    await checkAnswers(name, ports[name], blocked);
    await runDnsperf(1, ports[name], join(dir, 'warm.txt'), 1);
    return server;
  };
  /** One dnsperf run of `w` against `port` with the CPU time of `pid` (and its children) around it. */
  const measureAt = async (pid: number, port: number, w: Workload, tag: string, seconds: number, perf: PerfOptions): Promise<Measured> => {
    const file = join(dir, `${w}-${tag}.txt`);
    writeQueries(file, w, blocked, Math.ceil(seconds * (perf.rate ?? FILE_RATE)) + 1000, tag);
    const before = cpuSeconds(pid);
    const r = await runDnsperf(1, port, file, seconds, perf);
    rmSync(file, { force: true });
    const other = otherRcodes(r);
    if (other !== '') oddAnswers.push(`${w} run ${tag} on port ${port}: ${other} of ${fmt(r.completed)} answers`);
    // Work the load left behind (sinkhole's history writer catching up on the rows queued at
    // saturation) is this run's: its CPU is counted here, and the next run starts on an idle server.
    await settle(pid);
    return { ...r, cpuUs: ((cpuSeconds(pid) - before) * 1e6) / Math.max(1, r.completed) };
  };
  const measure = (pid: number, name: ServerName, w: Workload, tag: string, seconds: number, perf: PerfOptions): Promise<Measured> =>
    measureAt(pid, ports[name], w, `${name[0]}${tag}`, seconds, perf);
  const blocked = blockedNames(100_000);
  /** Runs in which answers were not all NOERROR (see otherRcodes), said at the end of the run. */
  const oddAnswers: string[] = [];
  try {
    mkdirSync(join(dir, 'lists'));
    const lists = writeLists(dir, blocked);
    writeFileSync(join(dir, 'warm.txt'), HOT_SET.flatMap((n) => [`${n} A`, `${n} AAAA`]).join('\n') + '\n');
    const upstream = startUpstream(dir, ports);
    await firstAnswer(ports.upstream, `probe.${FORWARD_DOMAIN}`, performance.now());

    say(`## Benchmark: sinkhole, dnsmasq and Unbound (${new Date().toISOString().slice(0, 10)}${o.quick ? ', --quick: a smoke run, not for comparison' : ''})`);
    say();
    say(`Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}; ${versionLine()}.`);
    say(`Each server pinned to core 0 with ${o.workers > 1 ? `${o.workers} sinkhole workers on cores 0-1` : 'one process (Unbound: num-threads 1)'}; ` +
      `dnsperf (8 clients) and the upstream (nsd answering *.${FORWARD_DOMAIN}) on core 1. 100,000 blocked domains, the same for every server. ` +
      `sinkhole and dnsmasq cache 10,000 entries; Unbound has 32 MB of message cache. sinkhole logs at its default level (blocked queries on). ` +
      `${o.duration} s per run, ${o.rounds} round${o.rounds > 1 ? 's' : ''}, the order rotating.`);
    say();

    // The upstream's own ceiling, so that W4 is known not to measure it.
    const ceilingFile = join(dir, 'ceiling.txt');
    writeQueries(ceilingFile, 'W4', blocked, o.duration * FILE_RATE, 'ceiling');
    const ceiling = await runDnsperf(0, ports.upstream, ceilingFile, Math.min(o.duration, 5), { outstanding: o.outstanding });
    say(`Upstream alone (dnsperf on the other core, ${o.outstanding} outstanding): ${fmt(ceiling.qps)} q/s.`);
    say();

    const bench: Bench = {
      quick: o.quick, rounds: o.rounds, duration: o.duration, outstanding: o.outstanding, dir, ports, lists, blocked, say, stop,
      measure: measureAt,
      sinkholeArgs: (x) => sinkholeArgs(dir, ports, x),
      startReady: async (args, cores, tag) => {
        const log = join(dir, `sinkhole-${tag.replace(/[^\w-]/g, '_')}.log`);
        const server = startSinkhole(cores, args, log);
        await firstAnswer(ports.sinkhole, 'messenger.hotmail.com', performance.now(), 30_000).catch((err: unknown) => {
          throw new Error(`sinkhole serve ${args.join(' ')}: ${(err as Error).message}; its log ends:\n${readFileSync(log, 'utf8').slice(-800)}`);
        });
        await runDnsperf(1, ports.sinkhole, join(dir, 'warm.txt'), 1);
        return server;
      },
    };

    const results = new Map<string, Measured>();
    const bursts = new Map<string, Measured>();
    const relayed = new Map<number, Measured>();
    const reused = new Map<number, Measured>();
    const key = (w: Workload, name: ServerName, round: number) => `${w}/${name}/${round}`;
    for (let round = 1; round <= (o.only.length > 0 ? o.rounds : 0); round++) {
      const order = SERVERS.map((_, i) => SERVERS[(i + round - 1) % SERVERS.length]!);
      for (const name of order) {
        const server = await ready(name, lists);
        for (const w of o.only) results.set(key(w, name, round), await measure(server.pid!, name, w, `t${round}`, o.duration, { outstanding: o.outstanding }));
        // The burst runs once, after the first round's throughput runs, on the same start.
        if (round === 1) for (const w of o.only) bursts.set(key(w, name, 1), await measure(server.pid!, name, w, 'burst', o.duration, { outstanding: o.burst }));
        await stop(server);
      }
      // W4's floor (issue 18): a bare relay on node:dgram, right after the three servers of the
      // round; and sinkhole with --upstream-port-reuse, to show what the socket per query costs.
      if (o.only.includes('W4')) {
        const reuse = await ready('sinkhole', lists, dir, false, ['--upstream-port-reuse', String(PORT_REUSE)]);
        reused.set(round, await measure(reuse.pid!, 'sinkhole', 'W4', `reuse${round}`, o.duration, { outstanding: o.outstanding }));
        await stop(reuse);
        const relay = startBenchScript(0, 'relay.js', [String(ports.relay), String(ports.upstream)]);
        await firstAnswer(ports.relay, `probe.${FORWARD_DOMAIN}`, performance.now());
        relayed.set(round, await measureAt(relay.pid!, ports.relay, 'W4', `relay${round}`, o.duration, { outstanding: o.outstanding }));
        await stop(relay);
      }
    }

    if (o.only.length > 0) {
      const rounds = Array.from({ length: o.rounds }, (_, i) => i + 1);
      say(`### Throughput at ${fmt(o.outstanding)} queries outstanding (queries per second)`);
      say();
      say(`dnsperf keeps ${fmt(o.outstanding)} queries outstanding over 8 clients: a depth at which no server should lose queries ` +
        '(the next table shows whether one did). Ratios compare servers of the same round.');
      say();
      say(`| workload | round | ${SERVERS.map((s) => LABEL[s]).join(' | ')} | sinkhole / dnsmasq | sinkhole / Unbound |`);
      say('|---|---|---|---|---|---|---|');
      for (const w of o.only) {
        for (const round of rounds) {
          const [s, d, u] = SERVERS.map((n) => results.get(key(w, n, round))!);
          say(`| ${w} ${WORKLOADS[w]} | ${round} | ${fmt(s!.qps)} | ${fmt(d!.qps)} | ${fmt(u!.qps)} | ${fmt(s!.qps / d!.qps, 2)}× | ${fmt(s!.qps / u!.qps, 2)}× |`);
        }
      }
      say();
      say(`### Lost queries and CPU per answered query at ${fmt(o.outstanding)} outstanding`);
      say();
      say('CPU: the server process\'s user + system time (/proc/PID/stat) over the run, divided by the queries it answered. ' +
        'A few lost queries are the opening burst (dnsperf sends its first queries at once) overflowing a socket buffer.');
      say();
      say(`| workload | round | ${SERVERS.map((s) => `${LABEL[s]} lost`).join(' | ')} | ${SERVERS.map((s) => `${LABEL[s]} µs`).join(' | ')} |`);
      say('|---|---|---|---|---|---|---|---|');
      const lossy = new Set<string>();
      for (const w of o.only) {
        for (const round of rounds) {
          const rs = SERVERS.map((n) => results.get(key(w, n, round))!);
          SERVERS.forEach((n, i) => {
            if (waitShare(rs[i]!, o.outstanding, o.duration) > WAIT_TOLERATED) lossy.add(LABEL[n]);
          });
          say(`| ${w} | ${round} | ${rs.map((r) => `${fmt(r.lost)} of ${fmt(r.sent)}`).join(' | ')} | ${rs.map((r) => fmt(r.cpuUs, 1)).join(' | ')} |`);
        }
      }
      say();
      if (lossy.size > 0) {
        say(`**At this depth ${[...lossy].join(', ')} lost enough queries that dnsperf spent more than ${WAIT_TOLERATED * 100}% of its ` +
          'outstanding slots waiting 2 s for them: the throughput above partly measures that wait. Run again with a smaller --outstanding.**');
        say();
      }

      say(`### Burst: what is lost (${fmt(o.burst)} queries outstanding, round 1)`);
      say();
      say(`dnsperf keeps ${fmt(o.burst)} queries outstanding: more than a socket buffer holds for a server that reads one datagram at a ` +
        'time. A lost query is one not answered within 2 s; dnsperf waits those 2 s, so q/s here is not a throughput figure.');
      say();
      say('| workload | server | q/s | sent | lost | lost share | CPU µs per answered query |');
      say('|---|---|---|---|---|---|---|');
      for (const w of o.only) {
        for (const n of SERVERS) {
          const r = bursts.get(key(w, n, 1))!;
          say(`| ${w} | ${LABEL[n]} | ${fmt(r.qps)} | ${fmt(r.sent)} | ${fmt(r.lost)} | ${fmt((100 * r.lost) / Math.max(1, r.sent), 2)}% | ${fmt(r.cpuUs, 1)} |`);
        }
      }
      say();
    }

    if (relayed.size > 0) {
      say('### W4 against a bare relay (issue 18: at least 0.9)');
      say();
      say('bench/relay.ts: a relay on node:dgram that only swaps IDs (one upstream socket, no cache, no checks, no source port per ' +
        `query), pinned to core 0 like the servers, ${fmt(o.outstanding)} outstanding, run right after the servers of the same round. ` +
        `"Reuse": sinkhole with \`--upstream-port-reuse ${PORT_REUSE}\` (a random source port carries up to ${PORT_REUSE} queries; ` +
        'by default each query has its own, RFC 5452), run just before the relay.');
      say();
      say('| round | sinkhole q/s | reuse q/s | bare relay q/s | sinkhole / relay | reuse / relay | lost (sinkhole, reuse, relay) | CPU µs per answer (sinkhole, reuse, relay) |');
      say('|---|---|---|---|---|---|---|---|');
      for (const [round, r] of relayed) {
        const s = results.get(key('W4', 'sinkhole', round))!;
        const u = reused.get(round)!;
        say(`| ${round} | ${fmt(s.qps)} | ${fmt(u.qps)} | ${fmt(r.qps)} | ${fmt(s.qps / r.qps, 2)}× | ${fmt(u.qps / r.qps, 2)}× | ` +
          `${fmt(s.lost)}, ${fmt(u.lost)}, ${fmt(r.lost)} | ${fmt(s.cpuUs, 1)}, ${fmt(u.cpuUs, 1)}, ${fmt(r.cpuUs, 1)} |`);
      }
      say();
    }

    if (o.only.includes('W3')) {
      // The admin API's statistics (and the dashboard they feed) cost a little per query.
      say(`### Cost of the admin API and statistics (--admin) on W3, ${fmt(o.outstanding)} outstanding`);
      say();
      say('| round | without --admin | with --admin | with / without |');
      say('|---|---|---|---|');
      for (let round = 1; round <= o.rounds; round++) {
        const qps: number[] = [];
        for (const admin of round % 2 ? [false, true] : [true, false]) {
          const server = await ready('sinkhole', lists, dir, admin);
          qps[admin ? 1 : 0] = (await measure(server.pid!, 'sinkhole', 'W3', `a${admin ? 1 : 0}${round}`, o.duration, { outstanding: o.outstanding })).qps;
          await stop(server);
        }
        say(`| ${round} | ${fmt(qps[0]!)} q/s | ${fmt(qps[1]!)} q/s | ${fmt(qps[1]! / qps[0]!, 2)}× |`);
      }
      say();
    }

    if (o.parts.has('latency')) {
      const seconds = o.quick ? 2 : 5;
      const warm = o.quick ? 1 : LATENCY_WARM_S;
      say(`### Latency on W3 at a fixed offered rate (ms): the last ${seconds} s of each run of ${warm + seconds} s`);
      say();
      say('dnsperf offers the rate with up to 2,000 queries outstanding, so that a server that falls behind is not sent less (its ' +
        'queries wait, and count, instead). CPU: µs per answered query over the whole run.');
      say();
      say('| rate | server | p50 | p99 | max | lost | CPU µs per answered query |');
      say('|---|---|---|---|---|---|---|');
      for (const rate of [5000, 40000]) {
        for (const name of SERVERS) {
          const server = await ready(name, lists);
          // One steady run: the first seconds warm the server (and the load: a new dnsperf
          // sends its first queries in a burst) and are left out of the percentiles.
          const r = await measure(server.pid!, name, 'W3', `lat${rate}`, warm + seconds, { rate, outstanding: 2000, latencies: true, skipFirst: rate * warm });
          say(`| ${fmt(rate)}/s | ${LABEL[name]} | ${fmt(percentile(r.latencies, 50), 2)} | ${fmt(percentile(r.latencies, 99), 2)} | ` +
            `${fmt(r.latencies.at(-1) ?? NaN, 2)} | ${fmt(r.lost)} | ${fmt(r.cpuUs, 1)} |`);
          await stop(server);
        }
      }
      say();
    }

    if (o.parts.has('memory')) {
      say('### Memory and time to first answer');
      say();
      say('| rules | server | first answer after start | RSS after 1 s |');
      say('|---|---|---|---|');
      for (const count of o.quick ? [100_000] : [100_000, 1_000_000]) {
        const sub = join(dir, `mem-${count}`);
        mkdirSync(join(sub, 'lists'), { recursive: true });
        const l = writeLists(sub, count === 100_000 ? blocked : blockedNames(count));
        for (const name of SERVERS) {
          const t0 = performance.now();
          const server = startServer(name, l, sub, ports, 1);
          const ms = await firstAnswer(ports[name], 'messenger.hotmail.com', t0);
          await new Promise((r) => setTimeout(r, 1000));
          say(`| ${fmt(count)} | ${LABEL[name]} | ${fmt(ms / 1000, 2)} s | ${memoryMb(server.pid!).rss} MB |`);
          await stop(server);
        }
      }
      say();
    }

    if (o.parts.has('reload')) {
      const rules = o.quick ? 100_000 : 1_000_000;
      const sub = join(dir, 'reload');
      mkdirSync(join(sub, 'lists'), { recursive: true });
      const l = writeLists(sub, blockedNames(rules));
      const r = await reloadBench({ dir: sub, listsDir: l.sinkholeDir, rules, port: ports.probe, upstream: `127.0.0.1:${ports.upstream}`, rate: 10_000 });
      say(`### One-line appends to a ${fmt(rules)}-rule folder under a steady 10,000 q/s load (sinkhole)`);
      say();
      say('| append to blocked | reload time (logged) | queries during reloads | lost | p99 | worst | RSS before | RSS peak during reloads |');
      say('|---|---|---|---|---|---|---|---|');
      say(`| ${r.effectMs.map((ms) => fmt(ms)).join(', ')} ms | ${r.reloadMs.map((ms) => fmt(ms)).join(', ')} ms | ${fmt(r.sent)} | ${r.lost} | ` +
        `${fmt(r.p99Ms, 2)} ms | ${fmt(r.worstMs, 2)} ms | ${r.rssBeforeMb} MB | ${r.rssPeakMb} MB |`);
      say();
      // What the machine and the load generator give without a reload: a tail here is not the reload's.
      say(`The same load between the reloads: ${fmt(r.outside.sent)} queries, ${r.outside.lost} lost, p99 ${fmt(r.outside.p99Ms, 2)} ms, ` +
        `worst ${fmt(r.outside.worstMs, 2)} ms.`);
      say();
    }
    const sections: Record<Section, (b: Bench) => Promise<void>> = {
      groups: groupsSection, history: historySection, fleet: fleetSection, encrypted: encryptedSection, workers: workersSection,
    };
    for (const s of SECTIONS) if (o.parts.has(s)) await sections[s](bench);

    await stop(upstream);
    if (oddAnswers.length > 0) {
      say('**Answers other than NOERROR** (every workload here is answered NOERROR by a server doing the work; these runs ' +
        `measured something else): ${oddAnswers.join('; ')}.`);
      say();
    }
    const minutes = (performance.now() - t0) / 60000;
    say(`(This run: ${[...o.parts].join(', ')}; ${fmt(minutes, 1)} minutes.)`);
    writeFileSync('bench-results.md', out.join('\n') + '\n');
    console.log('(written to bench-results.md)');
    const full = !o.quick && o.only.length === 4 && o.parts.size === PARTS.length && o.workers === 1;
    if (full && o.docs) console.log(writeDocs(out.join('\n')));
    else console.log(`(${DOCS} not touched: ${o.docs ? 'a quick, partial or --workers run' : '--no-docs'})`);
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
