// Side-by-side runs of one sinkhole in several configurations ("variants") in the same
// benchmark run: the same lists, upstream, workloads, depth and cores as the main table,
// rounds rotating which variant goes first, and one table of q/s, ratios to the first
// variant (the baseline), lost queries and CPU µs per answered query. The sections of
// issues 14-18 (sections.ts) are each a call of compareVariants() with their variants.
import type { ChildProcess } from 'node:child_process';
import type { PerfOptions, PerfResult } from './dnsperf.js';
import type { Lists, Workload } from './generate.js';

/** probe + 1 is the admin API's, probe + 6 and + 7 the encrypted section's; relay: bench/relay.ts. */
export interface Ports { upstream: number; sinkhole: number; dnsmasq: number; unbound: number; probe: number; relay: number }

export interface Measured extends PerfResult {
  /** CPU microseconds the server spent per answered query. */
  cpuUs: number;
}

/** What a section needs of the running benchmark (built once in run.ts). */
export interface Bench {
  quick: boolean;
  rounds: number;
  duration: number;
  outstanding: number;
  dir: string;
  ports: Ports;
  lists: Lists;
  blocked: string[];
  say: (line?: string) => void;
  /** One dnsperf run of `w` against `port`, with the CPU time of `pid` (and children) around it. */
  measure: (pid: number, port: number, w: Workload, tag: string, seconds: number, perf: PerfOptions) => Promise<Measured>;
  /** `sinkhole serve` args as the main table runs it (listen, upstream, lists, cache, state dir). */
  sinkholeArgs: (o?: { listsDir?: string; upstream?: string[]; stateDir?: string }) => string[];
  /** Starts sinkhole with `args` pinned to `cores`, waits for its first answer on the UDP port, warms its cache. */
  startReady: (args: string[], cores: number | string, tag: string) => Promise<ChildProcess>;
  stop: (child: ChildProcess) => Promise<void>;
}

export interface Variant {
  label: string;
  args: string[];
  /** taskset cores of the server; 0 unless given (the main table's core). */
  cores?: number | string;
  /** Called once the server answers, before the runs: e.g. a check that it blocks what it should. */
  check?: () => Promise<void>;
}

/** dnsperf waits 2 s for each lost query; past this share of slot-seconds, throughput measures that wait. */
export const WAIT_TOLERATED = 0.02;
export const waitShare = (r: PerfResult, outstanding: number, seconds: number): number => (r.lost * 2) / (outstanding * seconds);

export const fmt = (n: number, digits = 0): string =>
  (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Runs every variant on every workload, `b.rounds` rounds (a fresh start of each variant per
 * round, the order rotating), and prints the section's table under `title`. Returns the
 * ratios to the baseline per workload (median over rounds) for the section's own summary.
 */
export async function compareVariants(b: Bench, title: string, intro: string, workloads: Workload[], variants: Variant[]): Promise<Map<string, number>> {
  const results = new Map<string, Measured>();
  const key = (w: Workload, v: number, round: number): string => `${w}/${v}/${round}`;
  // The runs of one workload are back to back (a fresh start per run): this machine has slow
  // phases of tens of seconds, and variants measured minutes apart differed by more than the
  // costs measured here (docs/performance.md, "Back-to-back runs").
  for (let round = 1; round <= b.rounds; round++) {
    const order = variants.map((_, i) => (i + round - 1) % variants.length);
    for (const w of workloads) {
      for (const v of order) {
        const variant = variants[v]!;
        const server = await b.startReady(variant.args, variant.cores ?? 0, `${title.replace(/\W+/g, '-').slice(0, 40)}-${v}-${round}-${w}`);
        try {
          await variant.check?.();
          results.set(key(w, v, round), await b.measure(server.pid!, b.ports.sinkhole, w, `v${v}r${round}${w}`, b.duration, { outstanding: b.outstanding }));
        } finally {
          await b.stop(server);
        }
      }
    }
  }
  const [base, ...others] = variants;
  b.say(`### ${title}`);
  b.say();
  b.say(`${intro} ${fmt(b.outstanding)} queries outstanding, ${b.duration} s per run, ${b.rounds} round${b.rounds > 1 ? 's' : ''} ` +
    `(a fresh start of each variant per workload and round, the runs of one workload back to back, the order rotating). Ratios: q/s of the variant over the baseline (${base!.label}) of the same round.`);
  b.say();
  b.say(`| workload | round | ${variants.map((v) => `${v.label} q/s`).join(' | ')} | ${others.map((v) => `${v.label} / ${base!.label}`).join(' | ')} | ` +
    `lost (${variants.map((v) => v.label).join(', ')}) | CPU µs per answer (${variants.map((v) => v.label).join(', ')}) |`);
  b.say(`|---|---|${variants.map(() => '---|').join('')}${others.map(() => '---|').join('')}---|---|`);
  const lossy = new Set<string>();
  const summary = new Map<string, number>();
  for (const w of workloads) {
    const ratios: number[][] = others.map(() => []);
    for (let round = 1; round <= b.rounds; round++) {
      const rs = variants.map((_, v) => results.get(key(w, v, round))!);
      rs.forEach((r, v) => {
        if (waitShare(r, b.outstanding, b.duration) > WAIT_TOLERATED) lossy.add(variants[v]!.label);
      });
      others.forEach((_, i) => ratios[i]!.push(rs[i + 1]!.qps / rs[0]!.qps));
      b.say(`| ${w} | ${round} | ${rs.map((r) => fmt(r.qps)).join(' | ')} | ${rs.slice(1).map((r) => `${fmt(r.qps / rs[0]!.qps, 2)}×`).join(' | ')} | ` +
        `${rs.map((r) => fmt(r.lost)).join(', ')} | ${rs.map((r) => fmt(r.cpuUs, 1)).join(', ')} |`);
    }
    others.forEach((v, i) => summary.set(`${w}/${v.label}`, median(ratios[i]!)));
  }
  b.say();
  if (lossy.size > 0) {
    b.say(`**At this depth ${[...lossy].join(', ')} lost enough queries that dnsperf spent more than ${WAIT_TOLERATED * 100}% of its ` +
      'outstanding slots waiting 2 s for them: the throughput above partly measures that wait. Run again with a smaller --outstanding.**');
    b.say();
  }
  return summary;
}

/** "W1 0.98×, W3 1.01×" from compareVariants()'s summary for one variant. */
export function ratioLine(summary: Map<string, number>, label: string, workloads: Workload[]): string {
  return workloads.map((w) => `${w} ${fmt(summary.get(`${w}/${label}`) ?? NaN, 2)}×`).join(', ');
}
