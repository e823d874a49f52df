// Deterministic inputs for the benchmark: the blocklist (the same names for sinkhole,
// dnsmasq and Unbound), and the dnsperf query files for each workload. Same seed, same files.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** xorshift32: small, fast, and the same numbers on every machine. */
export function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export const MESSENGER_DOMAINS = ['messenger.hotmail.com', 'gateway.messenger.hotmail.com', 'meebo.com', 'e-messenger.net', 'msg.yahoo.com', 'oscar.aol.com'];
/** Forwarded names live under this domain: the benchmark's upstream answers any of them. */
export const FORWARD_DOMAIN = 'bench.test';

export function blockedNames(count: number): string[] {
  const next = random(count);
  const names = [...MESSENGER_DOMAINS];
  for (let i = names.length; i < count; i++) names.push(`d${i}-${next().toString(36)}.blocked-bench.test`);
  return names;
}

export interface Lists {
  /** A folder holding bench.txt, for sinkhole. */
  sinkholeDir: string;
  /** address= lines for dnsmasq. */
  dnsmasqConf: string;
  /** local-zone/local-data lines for Unbound, to include in its server: clause. */
  unboundConf: string;
}

/**
 * The same rules for every server: a name and every name below it answer 127.0.0.1 to A,
 * ::1 to AAAA, and no records to other types. Unbound's `redirect` zone answers names
 * below the listed one with the listed one's data, as sinkhole and dnsmasq do.
 */
export function writeLists(dir: string, names: string[]): Lists {
  const sinkholeDir = join(dir, 'lists');
  const dnsmasqConf = join(dir, 'dnsmasq-block.conf');
  const unboundConf = join(dir, 'unbound-block.conf');
  writeFileSync(join(sinkholeDir, 'bench.txt'), names.join('\n') + '\n');
  writeFileSync(dnsmasqConf, names.map((n) => `address=/${n}/127.0.0.1\naddress=/${n}/::1\n`).join(''));
  writeFileSync(unboundConf, names.map((n) =>
    `local-zone: "${n}." redirect\nlocal-data: "${n}. 3600 IN A 127.0.0.1"\nlocal-data: "${n}. 3600 IN AAAA ::1"\n`).join(''));
  return { sinkholeDir, dnsmasqConf, unboundConf };
}

export type Workload = 'W1' | 'W2' | 'W3' | 'W4';

export const WORKLOADS: Record<Workload, string> = {
  W1: 'blocked names (random subdomains of listed names)',
  W2: 'cache hits (a warmed set of 1,000 names)',
  W3: 'mixed: 30% blocked, 60% cache hits, 10% unique misses',
  W4: 'unique misses (forwarding)',
};

export const HOT_SET = Array.from({ length: 1000 }, (_, i) => `h${i}.${FORWARD_DOMAIN}`);

/**
 * A dnsperf query file with `lines` queries. `tag` makes the unique names of one run differ
 * from every other run's, so a miss is a miss for both servers in every round.
 */
export function writeQueries(path: string, workload: Workload, blocked: string[], lines: number, tag: string): void {
  const next = random(lines + workload.charCodeAt(1) * 7919 + tag.length);
  const type = (): string => (next() & 1 ? 'A' : 'AAAA');
  const out: string[] = [];
  let unique = 0;
  for (let i = 0; i < lines; i++) {
    let kind = workload === 'W1' ? 0 : workload === 'W2' ? 1 : workload === 'W4' ? 2 : 3;
    if (kind === 3) {
      const r = next() % 10;
      kind = r < 3 ? 0 : r < 9 ? 1 : 2;
    }
    if (kind === 0) out.push(`x${next() % 100000}.${blocked[next() % blocked.length]} ${type()}`);
    else if (kind === 1) out.push(`${HOT_SET[next() % HOT_SET.length]} ${type()}`);
    else out.push(`u${unique++}-${tag}.${FORWARD_DOMAIN} ${type()}`);
  }
  writeFileSync(path, out.join('\n') + '\n');
}
