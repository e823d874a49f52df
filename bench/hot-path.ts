// `node dist-bench/bench/hot-path.js`: CPU microseconds per answered query of sinkhole alone
// on W1 (blocked) and W2 (cache hits) at a fixed rate below saturation, and optionally a V8
// CPU profile of each run. For changes to the per-query path: measure before and after the
// same way (SINKHOLE_BENCH_CLI=/path/to/other/dist/main/cli.js runs another build).
// Same inputs as `npm run bench` (generate.ts), same upstream (nsd), same pinning: the server
// on core 0, dnsperf and nsd on core 1. Options: see USAGE.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, runDnsperf } from './dnsperf.js';
import { blockedNames, FORWARD_DOMAIN, HOT_SET, writeLists, writeQueries, type Workload } from './generate.js';
import { readdirSync, readFileSync } from 'node:fs';
import { cpuSeconds, firstAnswer, startPinned, startSinkhole, stop } from './processes.js';
import { writeNsdConfig } from './servers.js';

const USAGE = '--only W1,W2 (W3, W4 too; W4 below ~20000 q/s) --rate Q (queries/s, default 30000; 0: as fast as answered) --duration S (default 10) --rounds N (default 3) ' +
  '--cpu-prof DIR (one .cpuprofile per workload and round) --attach CMD (run by sh during the load, {pid} the server\'s, ' +
  '{w} the workload, {r} the round; stopped with SIGINT after it, e.g. "perf stat -e \'syscalls:sys_enter_*mmsg\' -p {pid}") ' +
  '--port-base N --latency (p50/p99/max of the run after its first 2 s, up to 2,000 outstanding as the latency section); ' +
  'after --, more options for sinkhole serve (e.g. -- --history off)';

interface Options { only: Workload[]; rate: number; duration: number; rounds: number; cpuProf: string | null; attach: string | null; portBase: number; latency: boolean; serve: string[] }

function parseOptions(argv: string[]): Options {
  const o: Options = { only: ['W1', 'W2'], rate: 30000, duration: 10, rounds: 3, cpuProf: null, attach: null, portBase: 15500, latency: false, serve: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value (options: ${USAGE})`);
      return v;
    };
    if (a === '--') {
      o.serve = argv.slice(i + 1);
      break;
    } else if (a === '--only') o.only = value().split(',') as Workload[];
    else if (a === '--rate') o.rate = Number(value());
    else if (a === '--duration') o.duration = Number(value());
    else if (a === '--rounds') o.rounds = Number(value());
    else if (a === '--cpu-prof') o.cpuProf = value();
    else if (a === '--attach') o.attach = value();
    else if (a === '--port-base') o.portBase = Number(value());
    else if (a === '--latency') o.latency = true;
    else throw new Error(`unknown option ${a} (options: ${USAGE})`);
  }
  return o;
}

function startUpstream(dir: string, port: number) {
  return startPinned(1, 'nsd', ['-d', '-c', writeNsdConfig(dir, port)]);
}

/**
 * utime and stime ticks (1/100 s) of each thread of `pid`, summed by thread name (the main
 * thread is "node"; V8's and libuv's helpers, the history writer's worker have their own).
 */
interface ThreadTime { user: number; system: number; runNs: number; waitNs: number; voluntary: number; involuntary: number }

function threadTicks(pid: number): Map<string, ThreadTime> {
  const out = new Map<string, ThreadTime>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '');
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const t = out.get(name) ?? { user: 0, system: 0, runNs: 0, waitNs: 0, voluntary: 0, involuntary: 0 };
      t.user += Number(fields[11]);
      t.system += Number(fields[12]);
      // schedstat: ns on the CPU, ns runnable but waiting for it (exact, unlike the ticks above).
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      t.runNs += run!;
      t.waitNs += wait!;
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      t.voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      t.involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      out.set(name, t);
    } catch {
      // the thread ended
    }
  }
  return out;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-hot-path-'));
  const upstreamPort = o.portBase;
  const port = o.portBase + 1;
  try {
    mkdirSync(join(dir, 'lists'));
    const blocked = blockedNames(100_000);
    const lists = writeLists(dir, blocked);
    writeFileSync(join(dir, 'warm.txt'), HOT_SET.flatMap((n) => [`${n} A`, `${n} AAAA`]).join('\n') + '\n');
    const upstream = startUpstream(dir, upstreamPort);
    await firstAnswer(upstreamPort, `probe.${FORWARD_DOMAIN}`, performance.now());
    console.log(`rate ${o.rate} q/s, ${o.duration} s per run, dnsperf -c 8 -q 200; server on core 0, dnsperf and nsd on core 1`);
    for (let round = 1; round <= o.rounds; round++) {
      for (const w of o.only) {
        // A fresh server per run, so that a profile holds one workload.
        const prof = o.cpuProf === null ? [] : ['--cpu-prof', '--cpu-prof-dir', o.cpuProf, '--cpu-prof-name', `${w}-r${round}.cpuprofile`];
        // HOT_PATH_NODE_FLAGS: more node/V8 flags for the server (e.g. --single-threaded-gc).
        prof.push(...(process.env.HOT_PATH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''));
        // HOT_PATH_CORES: the server's taskset cores (default 0; e.g. 0-1 to see it unpinned on this machine).
        // HOT_PATH_UPSTREAM: the server's upstream arguments instead of nsd's address (e.g. a DoH
        // peer of your own that forwards to nsd on --port-base: "--upstream https://... --upstream-ca FILE").
        const upstreamArgs = process.env.HOT_PATH_UPSTREAM?.split(' ').filter((a) => a !== '') ?? ['--upstream', `127.0.0.1:${upstreamPort}`];
        const server = startSinkhole(process.env.HOT_PATH_CORES ?? 0, ['--listen', `127.0.0.1:${port}`, ...upstreamArgs,
          '--blocklists', lists.sinkholeDir, ...(o.serve.includes('--cache-size') ? [] : ['--cache-size', '10000']), '--state-dir', join(dir, 'state'), ...o.serve],
          // HOT_PATH_LOG: where the server's output goes (e.g. to read --trace-gc after the run); default in the run's temporary folder.
          process.env.HOT_PATH_LOG?.replaceAll('{w}', w).replaceAll('{r}', String(round)) ?? join(dir, 'sinkhole.log'), prof);
        await firstAnswer(port, 'messenger.hotmail.com', performance.now());
        await runDnsperf(1, port, join(dir, 'warm.txt'), 1);
        const file = join(dir, `${w}-${round}.txt`);
        writeQueries(file, w, blocked, Math.ceil(o.duration * (o.rate > 0 ? o.rate : 150_000)) + 1000, `hp${round}`);
        const before = cpuSeconds(server.pid!);
        const threadsBefore = threadTicks(server.pid!);
        // A profiler or tracer over the load only (its own output: stdout and stderr pass through).
        const attached = o.attach === null ? null
          : spawn('sh', ['-c', o.attach.replaceAll('{pid}', String(server.pid)).replaceAll('{w}', w).replaceAll('{r}', String(round))],
            { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
        // --rate 0: as fast as the server answers (saturation, as the bench's history section).
        const rate = o.rate > 0 ? { rate: o.rate } : {};
        const r = await runDnsperf(1, port, file, o.duration, o.latency ? { outstanding: 2000, ...rate, latencies: true, skipFirst: o.rate * 2 } : { outstanding: 200, ...rate });
        const cpu = cpuSeconds(server.pid!) - before;
        if (attached !== null) {
          // An attachment may have ended on its own (e.g. "sleep 8; ..."): nothing to stop then.
          if (attached.exitCode === null && attached.signalCode === null) {
            const ended = new Promise((resolve) => attached.once('exit', resolve));
            process.kill(-attached.pid!, 'SIGINT');
            await ended;
          }
        }
        const perQuery = (ticks: number): string => ((ticks * 10_000) / Math.max(1, r.completed)).toFixed(2);
        const threads = [...threadTicks(server.pid!)].map(([name, t]) => {
          const b = threadsBefore.get(name) ?? { user: 0, system: 0, runNs: 0, waitNs: 0, voluntary: 0, involuntary: 0 };
          const ns = (v: number): string => (v / 1000 / Math.max(1, r.completed)).toFixed(2);
          const perK = (v: number): string => ((v * 1000) / Math.max(1, r.completed)).toFixed(0);
          return `${name} ${perQuery(t.user - b.user)} user + ${perQuery(t.system - b.system)} sys, ran ${ns(t.runNs - b.runNs)} waited ${ns(t.waitNs - b.waitNs)}, ` +
            `switches per 1000 q ${perK(t.voluntary - b.voluntary)} vol ${perK(t.involuntary - b.involuntary)} invol`;
        });
        const latency = o.latency ? `p50 ${percentile(r.latencies, 50).toFixed(2)} p99 ${percentile(r.latencies, 99).toFixed(2)} max ${(r.latencies.at(-1) ?? NaN).toFixed(2)} ms, ` : '';
        console.log(`${w} round ${round}: ${r.completed} answered, ${r.lost} lost, ${r.qps.toFixed(0)} q/s, ${latency}` +
          `CPU ${cpu.toFixed(2)} s = ${((cpu * 1e6) / Math.max(1, r.completed)).toFixed(2)} µs per answered query ` +
          `(µs per query by thread: ${threads.join('; ')})`);
        await stop(server);
      }
    }
    await stop(upstream);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
