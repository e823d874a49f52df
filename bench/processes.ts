// Starting and stopping the servers the benchmark measures, pinned to a core; reading
// their memory; timing their first answer. Every process started here is stopped by PID.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import dns2 from 'dns2';
import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_FLAGS } from '../src/main/node-flags.js';
import { buildQuery } from '../src/wire/build-query.js';

const started = new Set<ChildProcess>();

export function stopAll(): void {
  for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
  started.clear();
}
process.on('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopAll();
    process.exit(130);
  });
}

export function haveTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** Starts `command` pinned to `core` (taskset), stdout to `logFile`. */
export function startPinned(core: number | string, command: string, args: string[], logFile = '/dev/null'): ChildProcess {
  const out = openSync(logFile, 'a');
  const child = spawn('taskset', ['-c', String(core), command, ...args], { stdio: ['ignore', out, out] });
  started.add(child);
  return child;
}

/** The repository's top folder (this file runs from dist-bench/bench/). */
export const ROOT = join(import.meta.dirname, '..', '..');

/**
 * One of the benchmark's own reference scripts (dist-bench/bench/`script`, e.g. relay.js),
 * pinned to `core`. Never sinkhole: every sinkhole measured starts through startSinkhole, with
 * the node flags it is installed with (test/units.test.ts checks run.ts starts node no other way).
 */
export function startBenchScript(core: number | string, script: string, args: string[], logFile?: string): ChildProcess {
  return startPinned(core, process.execPath, [join(ROOT, 'dist-bench', 'bench', script), ...args], logFile);
}

/**
 * The sinkhole under test: this tree's build (as `npm run build` makes it), or another build given by SINKHOLE_BENCH_CLI
 * (to compare two versions with the same harness on the same day, e.g. before and after a change).
 */
export const CLI = process.env.SINKHOLE_BENCH_CLI ?? join(ROOT, 'dist', 'main', 'cli.js');
/** Builds from before the per-client limits existed do not know their flags. */
const LIMIT_FLAGS = spawnSync(process.execPath, [CLI, 'serve', '--help'], { encoding: 'utf8' }).stdout.includes('--rate-limit')
  ? ['--rate-limit', '0', '--max-inflight-per-client', '0'] : [];

/**
 * Starts `sinkhole serve ARGS` pinned to `core` with the V8 flags it runs with in
 * production (node-flags.ts): every sinkhole the benchmark measures starts here. `nodeFlags`
 * adds to them (--cpu-prof for bench/hot-path.ts).
 */
export function startSinkhole(core: number | string, args: string[], logFile?: string, nodeFlags: string[] = []): ChildProcess {
  // dnsperf is one client address sending the whole load: per-client limits off (docs/performance.md).
  return startPinned(core, process.execPath, [...NODE_FLAGS, ...nodeFlags, CLI, 'serve', ...LIMIT_FLAGS, ...args], logFile);
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
  started.delete(child);
}

/** Sends a query every 20 ms until one is answered; resolves with the ms since `since`. */
export async function firstAnswer(port: number, name: string, since: number, timeoutMs = 60000): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    return await new Promise<number>((resolve, reject) => {
      const msg = buildQuery(name, 'A');
      const timer = setInterval(() => {
        if (performance.now() - since > timeoutMs) {
          clearInterval(timer);
          reject(new Error(`no answer on port ${port} within ${timeoutMs} ms`));
        }
        socket.send(msg, port, '127.0.0.1');
      }, 20);
      socket.on('message', () => {
        clearInterval(timer);
        resolve(performance.now() - since);
      });
      socket.send(msg, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

/** VmRSS and VmHWM (peak) of a process and its children in MB. */
export function memoryMb(pid: number): { rss: number; peak: number } {
  const pids = [pid, ...childPids(pid)];
  let rss = 0;
  let peak = 0;
  for (const p of pids) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      peak += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    } catch {
      // gone
    }
  }
  return { rss: Math.round(rss), peak: Math.round(peak) };
}

function childPids(pid: number): number[] {
  try {
    const direct = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return direct.flatMap((c) => [c, ...childPids(c)]);
  } catch {
    return [];
  }
}

/** Clock ticks per second of /proc/PID/stat's utime and stime (100 on Linux, asked once). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/**
 * CPU seconds (user + system, utime + stime of /proc/PID/stat: every thread) a process and
 * its children have used. Read before and after a run, divided by the answered queries:
 * the CPU each server spends per answer, whatever its throughput.
 */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of [pid, ...childPids(pid)]) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / CLOCK_TICKS;
}

/**
 * Waits until `pid` (and children) uses at most one clock tick (4% of a core) in 250 ms, at most `maxMs`:
 * what a run left behind (queued writes) is done before the next run begins.
 */
export async function settle(pid: number, maxMs = 15_000): Promise<void> {
  const until = performance.now() + maxMs;
  let last = cpuSeconds(pid);
  while (performance.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    const now = cpuSeconds(pid);
    if (now - last <= 1.5 / CLOCK_TICKS) return;
    last = now;
  }
}

/** The A records' addresses in the answer section of `msg` (dns2's parser); none when it is cut short. */
function answerAddresses(msg: Buffer): string[] {
  try {
    return dns2.Packet.parse(msg).answers.filter((rr) => rr.type === dns2.Packet.TYPE.A).map((rr) => rr.address ?? '');
  } catch {
    // A reply that ends inside a record: not the answer asked for.
    return [];
  }
}

/** Whether `name` A, asked of 127.0.0.1:`port`, is answered with the address `ipv4` in its answer section. */
export async function answerIs(port: number, name: string, ipv4: string): Promise<boolean> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    const reply = await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 2000);
      socket.once('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      socket.send(buildQuery(name, 'A'), port, '127.0.0.1');
    });
    return reply !== null && answerAddresses(reply).includes(ipv4);
  } finally {
    socket.close();
  }
}
