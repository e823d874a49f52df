// Running dnsperf pinned to a core and reading its report (and, in latency mode, every
// query's latency from -v output, for percentiles).
import { spawn } from 'node:child_process';

export interface PerfResult {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  /** Latencies in ms, sorted, when asked for. */
  latencies: number[];
}

export function runDnsperf(core: number, port: number, file: string, seconds: number, opts: { rate?: number; latencies?: boolean } = {}): Promise<PerfResult> {
  const args = ['-c', String(core), 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-c', '8', '-q', '2000', '-t', '2'];
  if (opts.rate !== undefined) args.push('-Q', String(opts.rate));
  if (opts.latencies) args.push('-v');
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const latencies: number[] = [];
    let tail = '';
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('> ')) {
          // "> NOERROR name A 0.000104"; a timed-out query's line has no latency.
          const seconds = Number(line.slice(line.lastIndexOf(' ') + 1));
          if (opts.latencies && Number.isFinite(seconds)) latencies.push(seconds * 1000);
        } else tail += line + '\n';
      }
    });
    child.stderr.on('data', (c: Buffer) => (tail += c.toString()));
    child.on('error', reject);
    child.on('exit', () => {
      const num = (re: RegExp): number => Number(re.exec(tail)?.[1] ?? NaN);
      const result = {
        sent: num(/Queries sent:\s+(\d+)/), completed: num(/Queries completed:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/),
        qps: num(/Queries per second:\s+([\d.]+)/), latencies: latencies.sort((a, b) => a - b),
      };
      if (Number.isNaN(result.qps)) reject(new Error(`dnsperf gave no report:\n${tail.slice(-500)}`));
      else resolve(result);
    });
  });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
