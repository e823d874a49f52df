// Running dnsperf pinned to a core and reading its report (and, in latency mode, every
// query's latency from -v output, for percentiles).
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PerfResult {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  /** Answers by response code, from dnsperf's "Response codes:" line ({NOERROR: 1807480, ...}). */
  rcodes: Record<string, number>;
  /** Latencies in ms, sorted, when asked for. */
  latencies: number[];
}

export interface PerfOptions {
  /** Queries kept outstanding (dnsperf -q, over 8 clients); 200 unless given. */
  outstanding?: number;
  /** Offered rate (dnsperf -Q); as fast as answers come back when not given. */
  rate?: number;
  /** Every answered query's latency, from -v output. */
  latencies?: boolean;
  /** Leave out the first N latencies (the warm-up part of a run; -v lists queries in the order they finish). */
  skipFirst?: number;
  /** Transport (dnsperf -m): UDP unless given; `doh` needs `dohUri`. */
  mode?: 'udp' | 'tcp' | 'dot' | 'doh';
  dohUri?: string;
}

/**
 * dnsperf with 8 clients against 127.0.0.1:`port` for `seconds`, pinned to `core`. A query
 * not answered within 2 s counts as lost, and dnsperf waits those 2 s for it: at a depth
 * where a server drops queries, throughput measures that wait as much as the server.
 */
export function runDnsperf(core: number, port: number, file: string, seconds: number, opts: PerfOptions = {}): Promise<PerfResult> {
  const args = ['-c', String(core), 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-c', '8',
    '-q', String(opts.outstanding ?? 200), '-t', '2'];
  if (opts.rate !== undefined) args.push('-Q', String(opts.rate));
  if (opts.mode !== undefined && opts.mode !== 'udp') args.push('-m', opts.mode);
  if (opts.mode === 'doh') args.push('-O', `doh-uri=${opts.dohUri ?? `https://127.0.0.1:${port}/dns-query`}`, '-O', 'doh-method=POST');
  if (opts.latencies) args.push('-v');
  // -v writes a line per query: it goes to a file, read after the run, so that no process
  // parses 40,000 lines a second while the measurement runs.
  const verbose = opts.latencies ? join(tmpdir(), `dnsperf-${process.pid}-${Date.now()}.txt`) : null;
  const verboseFd = verbose === null ? null : openSync(verbose, 'w');
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', verboseFd ?? 'pipe', 'pipe'] });
    if (verboseFd !== null) closeSync(verboseFd);
    let report = '';
    child.stdout?.on('data', (c: Buffer) => (report += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (report += c.toString()));
    child.on('error', reject);
    child.on('exit', () => {
      const latencies: number[] = [];
      if (verbose !== null) {
        for (const line of readFileSync(verbose, 'latin1').split('\n')) {
          // "> NOERROR name A 0.000104"; a timed-out query's line has no latency.
          if (!line.startsWith('> ')) {
            report += line + '\n';
            continue;
          }
          const seconds = Number(line.slice(line.lastIndexOf(' ') + 1));
          if (Number.isFinite(seconds)) latencies.push(seconds * 1000);
        }
        latencies.splice(0, opts.skipFirst ?? 0);
        rmSync(verbose, { force: true });
      }
      const num = (re: RegExp): number => Number(re.exec(report)?.[1] ?? NaN);
      const rcodes: Record<string, number> = {};
      for (const [, rcode, count] of (/Response codes:\s+(.*)/.exec(report)?.[1] ?? '').matchAll(/([A-Z]+) (\d+)/g)) rcodes[rcode!] = Number(count);
      const result = {
        sent: num(/Queries sent:\s+(\d+)/), completed: num(/Queries completed:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/),
        qps: num(/Queries per second:\s+([\d.]+)/), rcodes, latencies: latencies.sort((a, b) => a - b),
      };
      if (Number.isNaN(result.qps)) reject(new Error(`dnsperf gave no report:\n${report.slice(-500)}`));
      else resolve(result);
    });
  });
}

/**
 * Answers other than NOERROR, as "NXDOMAIN 1,234" (empty when every answer was NOERROR).
 * Every workload here is answered NOERROR by a server set up as the benchmark sets it up
 * (blocked names with an address, forwarded ones from the upstream's wildcard): anything
 * else means the server did not do the work the table says it did.
 */
export function otherRcodes(r: PerfResult): string {
  return Object.entries(r.rcodes).filter(([rcode, n]) => rcode !== 'NOERROR' && n > 0)
    .map(([rcode, n]) => `${rcode} ${n.toLocaleString('en-US')}`).join(', ');
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
