// The feature-cost sections of `npm run bench` (issues 14-18): each a table of sinkhole
// against itself in another configuration, in the same run, through compareVariants()
// (compare.ts): groups and schedules, history, fleet mode, encrypted upstreams and
// listeners, --workers 2. A section that needs a missing tool throws (run.ts checks the
// tools of the chosen sections before anything starts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { compareVariants, fmt, ratioLine, waitShare, WAIT_TOLERATED, type Bench, type Measured } from './compare.js';
import type { PerfResult } from './dnsperf.js';
import { writeQueries, type Workload } from './generate.js';
import { groupsConfig } from './groups-config.js';
import { answerIs, cpuSeconds, firstAnswer, ROOT, startPinned, stop } from './processes.js';

export const SECTIONS = ['groups', 'history', 'fleet', 'encrypted', 'workers'] as const;
export type Section = (typeof SECTIONS)[number];

/** Tools a section needs beyond the main table's, with the Debian package that has them. */
export const SECTION_TOOLS: Record<Section, Record<string, string>> = {
  groups: {}, history: {}, workers: {},
  fleet: { 'redis-server': 'redis-server', 'redis-cli': 'redis-tools' },
  encrypted: { dnsdist: 'dnsdist', openssl: 'openssl' },
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A W1 name (a subdomain of a listed one) must still get the sinkhole address. */
async function checkBlocks(b: Bench, variant: string): Promise<void> {
  const name = `x1.${b.blocked[7]}`;
  if (!(await answerIs(b.ports.sinkhole, name, '127.0.0.1'))) throw new Error(`${variant}: ${name} was not blocked (a W1 name must stay blocked in every variant)`);
}

// ---------------------------------------------------------------- issue 14: groups
export async function groupsSection(b: Bench): Promise<void> {
  const dir = join(b.dir, 'groups');
  // Its own folder (the same bench.txt, three bundles in available/) for both variants.
  mkdirSync(join(dir, 'lists', 'available'), { recursive: true });
  copyFileSync(join(b.lists.sinkholeDir, 'bench.txt'), join(dir, 'lists', 'bench.txt'));
  for (const bundle of ['chat-a', 'chat-b', 'chat-c']) {
    writeFileSync(join(dir, 'lists', 'available', `${bundle}.txt`), Array.from({ length: 50 }, (_, i) => `app${i}.${bundle}.test`).join('\n') + '\n');
  }
  const conf = join(dir, 'groups.conf');
  writeFileSync(conf, groupsConfig());
  const args = b.sinkholeArgs({ listsDir: join(dir, 'lists'), stateDir: join(dir, 'state') });
  const w: Workload[] = ['W1', 'W3'];
  const summary = await compareVariants(b, 'Cost of groups and schedules (issue 14) on W1 and W3',
    'The same server without a config file (baseline) and with one of 10 groups (CIDRs and addresses; 127.0.0.1, the load ' +
    'generator, in its own group beside 127.0.0.0/8) and 10 schedules (5 in force at the start, 4 not, and one in force every ' +
    'even minute: a window boundary every minute; in a full run each start with groups waits so that one passes halfway through its ' +
    'run), 15 block/allow lines over 4 bundles; the generator\'s group ' +
    'blocks the same bundle, so the verdicts are those of the baseline (checked before each run).',
    w, [
      { label: 'no groups', args, check: () => checkBlocks(b, 'no groups') },
      {
        label: '10 groups', args: ['--config', conf, ...args],
        check: async () => {
          await checkBlocks(b, '10 groups');
          // The groups are in force: chat-b (in available/, named only by block lines) blocks
          // for the generator's group while `work` is in force.
          if (!(await answerIs(b.ports.sinkhole, 'app1.chat-b.test', '127.0.0.1'))) throw new Error('10 groups: app1.chat-b.test was not blocked for 127.0.0.1 (group loadgen, schedule work): the config is not in force');
          // Full runs: start the run (one workload per start) so that a `flip` boundary (a
          // minute) falls halfway through it (a wait of up to a minute; not in --quick).
          if (!b.quick) {
            const span = b.duration + 1;
            const startAt = 60 - span / 2;
            const sec = new Date().getSeconds() + new Date().getMilliseconds() / 1000;
            if (span < 60 && (sec < startAt || sec > startAt + 5)) await sleep((((startAt - sec) % 60) + 60) % 60 * 1000);
          }
        },
      },
    ]);
  b.say(`Median ratio 10 groups / no groups: ${ratioLine(summary, '10 groups', w)} (target: no cost beyond noise).`);
  b.say();
}

// ---------------------------------------------------------------- issue 16: history
export async function historySection(b: Bench): Promise<void> {
  const w: Workload[] = ['W1', 'W3'];
  const variant = (mode: string) => ({
    label: `--history ${mode}`,
    args: [...b.sinkholeArgs({ stateDir: join(b.dir, `history-${mode}`) }), '--history', mode],
  });
  const summary = await compareVariants(b, 'Cost of the history (issue 16) on W1 and W3',
    '`--history off`, `blocked` (the default: a row per blocked query) and `all` (a row per query), each with a state ' +
    'directory of its own in the temp folder (the database grows over the rounds, as it would in use).',
    w, [variant('off'), variant('blocked'), variant('all')]);
  b.say(`Median ratios to --history off: blocked ${ratioLine(summary, '--history blocked', w)}; all ${ratioLine(summary, '--history all', w)} ` +
    '(target for blocked on W3: a cost of at most 5%, a ratio ≥ 0.95×).');
  b.say();
  // The storage side, from bench/history.ts in a child process (its own lines, as printed):
  // database growth per million blocked attempts, and 90-day reports over ten million.
  const growthN = b.quick ? 100_000 : 1_000_000;
  const reportN = b.quick ? 500_000 : 10_000_000;
  b.say(`Storage (\`node dist-bench/bench/history.js growth ${growthN}\` and \`report ${reportN}\`, on core 1):`);
  b.say();
  b.say('```');
  for (const line of [...await runHistoryJs(['growth', String(growthN)]), ...await runHistoryJs(['report', String(reportN)])]) b.say(line);
  b.say('```');
  b.say();
}

/**
 * A script of dist-bench/bench/ in a child process on core 1 (with dnsperf and the upstream,
 * off the measured core), killed after `timeoutMs`; its output lines (stdout and stderr).
 */
function runBenchScript(script: string, args: string[], timeoutMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', process.execPath, join(ROOT, 'dist-bench', 'bench', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`bench/${script} ${args.join(' ')} failed (exit ${code}): ${out.slice(-500)}`));
      else resolve(out.split('\n').filter((l) => l.trim() !== '').map((l) => l.trimEnd()));
    });
  });
}

/** bench/history.ts: its output lines. Bounded: writing ten million attempts takes a few minutes. */
function runHistoryJs(args: string[]): Promise<string[]> {
  return runBenchScript('history.js', args, 900_000);
}

// ---------------------------------------------------------------- issue 17: fleet
async function startRedis(b: Bench): Promise<{ child: ChildProcess; port: number }> {
  const port = await freeTcpPort();
  const dir = join(b.dir, 'redis');
  mkdirSync(dir, { recursive: true });
  const child = startPinned(1, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  for (let i = 0; ; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout.trim() === 'PONG') break;
    if (i > 250 || child.exitCode !== null) throw new Error(`redis-server did not answer on 127.0.0.1:${port} within 5 s`);
    await sleep(20);
  }
  return { child, port };
}

interface FleetFigures { p50?: number; p99?: number; max?: number; appends?: number; perThousand?: number; queries?: number; lost?: number; idlePerSecond?: number; byCommand?: string }

/** bench/fleet.ts (it runs three servers in one process): its --json line. Bounded: 100 appends take about 40 s, the traffic run about 50 s. */
async function runFleetJs(args: string[]): Promise<FleetFigures> {
  const lines = await runBenchScript('fleet.js', [...args, '--json'], 300_000);
  const line = lines.find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`bench/fleet.js ${args.join(' ')} printed no --json line: ${lines.slice(-5).join(' | ')}`);
  return JSON.parse(line) as FleetFigures;
}

export async function fleetSection(b: Bench): Promise<void> {
  const redis = await startRedis(b);
  const w: Workload[] = ['W1', 'W3'];
  let summary: Map<string, number>;
  try {
    summary = await compareVariants(b, 'Cost of fleet mode (issue 17) on W1 and W3',
      `Single mode (baseline) against the same server as the fleet's primary (\`--redis redis://127.0.0.1:${redis.port} --fleet-role primary\`; ` +
      'a redis-server started by the benchmark, pinned to core 1 with dnsperf and nsd): its shared cache writes every upstream answer ' +
      'through to Redis in 100 ms batches, heartbeats and counters go out in the background.',
      w, [
        { label: 'single', args: b.sinkholeArgs({ stateDir: join(b.dir, 'fleet-single') }) },
        {
          label: 'fleet primary',
          args: [...b.sinkholeArgs({ stateDir: join(b.dir, 'fleet-primary') }), '--redis', `redis://127.0.0.1:${redis.port}`,
            '--node-name', 'bench', '--fleet-role', 'primary'],
        },
      ]);
  } finally {
    await stop(redis.child);
  }
  b.say(`Median ratio fleet primary / single: ${ratioLine(summary, 'fleet primary', w)} (target: a cost of at most 5%, a ratio ≥ 0.95×).`);
  b.say();
  const n = b.quick ? 10 : 100;
  const q = b.quick ? 2000 : 10_000;
  const idle = b.quick ? 5 : 30;
  const a = await runFleetJs(['appends', String(n)]);
  const t = await runFleetJs(['traffic', String(q), String(idle)]);
  b.say('### Fleet propagation and Redis traffic (issue 17)');
  b.say();
  b.say('`bench/fleet.js` in a process of its own on core 1 with a redis-server of its own: a primary and two replicas (default ' +
    'timings, 250 ms reload debounce) for the appends; a primary and one replica for the traffic, queries to the replica at about ' +
    '1,000/s (50% a hot set of 200 names, 30% names seen once, 20% blocked), Redis commands counted with `INFO commandstats`.');
  b.say();
  b.say('| measure | figure |');
  b.say('|---|---|');
  b.say(`| append on the primary -> blocked on both replicas, ${n} appends | p50 ${fmt(a.p50 ?? NaN)} ms, p99 ${fmt(a.p99 ?? NaN)} ms, max ${fmt(a.max ?? NaN)} ms |`);
  b.say(`| Redis commands per 1,000 queries (${fmt(q)} queries, ${fmt(t.lost ?? NaN)} lost) | ${fmt(t.perThousand ?? NaN)} (${t.byCommand ?? ''}) |`);
  b.say(`| Redis commands per second idle, two nodes (${idle} s) | ${fmt(t.idlePerSecond ?? NaN, 2)} |`);
  b.say();
}

// ---------------------------------------------------------------- issue 15: encrypted
interface Certificates { ca: string; cert: string; key: string }

function makeCertificates(dir: string): Certificates {
  mkdirSync(dir, { recursive: true });
  const openssl = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=sinkhole bench CA', '-days', '2']);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=dns.test', '-addext', 'subjectAltName=DNS:dns.test,IP:127.0.0.1']);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-copy_extensions', 'copyall']);
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

interface Dnsdist { child: ChildProcess; plain: number; tls: number; https: number }

/** dnsdist (pinned to core 1) as the DoT/DoH/plain front of the benchmark's nsd. */
async function startDnsdist(b: Bench, certs: Certificates): Promise<Dnsdist> {
  const [plain, tls, https] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  const conf = join(b.dir, 'dnsdist.conf');
  writeFileSync(conf, [
    'setSecurityPollSuffix("")',
    `setLocal("127.0.0.1:${plain}")`,
    `addTLSLocal("127.0.0.1:${tls}", "${certs.cert}", "${certs.key}", {maxInFlight=10000})`,
    `addDOHLocal("127.0.0.1:${https}", "${certs.cert}", "${certs.key}", "/dns-query")`,
    // setUp(): no health checks; no packet cache (none by default): every query reaches nsd.
    `newServer({address="127.0.0.1:${b.ports.upstream}", maxInFlight=10000}):setUp()`,
    'setACL({"127.0.0.0/8"})',
    '',
  ].join('\n'));
  const log = join(b.dir, 'dnsdist.log');
  const child = startPinned(1, 'dnsdist', ['--supervised', '--disable-syslog', '-C', conf], log);
  await firstAnswer(plain, `probe.bench.test`, performance.now(), 10_000).catch((err: unknown) => {
    throw new Error(`dnsdist did not answer on 127.0.0.1:${plain} (log: ${log}): ${(err as Error).message}`);
  });
  // The TLS and DoH frontends come up with the plain one; give them a moment all the same.
  await sleep(300);
  return { child, plain, tls, https };
}

/** The Node HTTP/2 load client (bench/doh-load.ts) on core 1; the same report as dnsperf's. */
function runDohLoad(port: number, file: string, seconds: number, outstanding: number, ca: string): Promise<PerfResult & { clientCpuS: number; elapsedS: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', process.execPath, join(ROOT, 'dist-bench', 'bench', 'doh-load.js'),
      '--port', String(port), '--file', file, '--seconds', String(seconds), '--outstanding', String(outstanding), '--ca', ca], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) reject(new Error(`bench/doh-load.js failed (exit ${code}): ${out.slice(-500)}`));
      else resolve({ ...(JSON.parse(line) as Omit<PerfResult, 'latencies'> & { clientCpuS: number; elapsedS: number }), latencies: [] });
    });
  });
}

export async function encryptedSection(b: Bench): Promise<void> {
  const certs = makeCertificates(join(b.dir, 'certs'));
  const dd = await startDnsdist(b, certs);
  const w: Workload[] = ['W4'];
  let summary: Map<string, number>;
  try {
    summary = await compareVariants(b, 'W4 over encrypted upstreams (issue 15)',
      'Forwarding every query (W4) to nsd directly (baseline, as in the main table), and through dnsdist (pinned to core 1 with ' +
      'nsd and dnsperf) over plain UDP, DNS over TLS (`--upstream tls://127.0.0.1:PORT#dns.test`) and DNS over HTTPS ' +
      '(`--upstream https://127.0.0.1:PORT/dns-query#dns.test`), with `--upstream-ca` trusting the benchmark\'s test CA.',
      w, [
        { label: 'UDP to nsd', args: b.sinkholeArgs() },
        { label: 'UDP via dnsdist', args: b.sinkholeArgs({ upstream: ['--upstream', `127.0.0.1:${dd.plain}`] }) },
        { label: 'DoT via dnsdist', args: b.sinkholeArgs({ upstream: ['--upstream', `tls://127.0.0.1:${dd.tls}#dns.test`, '--upstream-ca', certs.ca] }) },
        { label: 'DoH via dnsdist', args: b.sinkholeArgs({ upstream: ['--upstream', `https://127.0.0.1:${dd.https}/dns-query#dns.test`, '--upstream-ca', certs.ca] }) },
      ]);
  } finally {
    await stop(dd.child);
  }
  b.say(`Median ratios to UDP to nsd: UDP via dnsdist ${ratioLine(summary, 'UDP via dnsdist', w)}, DoT ${ratioLine(summary, 'DoT via dnsdist', w)}, ` +
    `DoH ${ratioLine(summary, 'DoH via dnsdist', w)}.`);
  b.say();
  await listenersTable(b, certs);
}

/** W3 through the same server's UDP, DoT and DoH listeners. */
async function listenersTable(b: Bench, certs: Certificates): Promise<void> {
  const tlsPort = b.ports.probe + 6;
  const httpsPort = b.ports.probe + 7;
  const args = [...b.sinkholeArgs(), '--listen-tls', `127.0.0.1:${tlsPort}`, '--listen-https', `127.0.0.1:${httpsPort}`,
    '--tls-cert', certs.cert, '--tls-key', certs.key];
  const rows: { round: number; udp: Measured; dot: Measured; doh: Measured }[] = [];
  let dohClient = 'dnsperf -m doh';
  let dnsperfDoh = '';
  const clientLoad: string[] = [];
  for (let round = 1; round <= b.rounds; round++) {
    const server = await b.startReady(args, 0, `listen-${round}`);
    try {
      const udp = await b.measure(server.pid!, b.ports.sinkhole, 'W3', `lu${round}`, b.duration, { outstanding: b.outstanding });
      const dot = await b.measure(server.pid!, tlsPort, 'W3', `lt${round}`, b.duration, { outstanding: b.outstanding, mode: 'dot' });
      let doh: Measured | null = null;
      if (round === 1) {
        // dnsperf 2.10's DoH mode, tried once: use it if it gets answers.
        const tried = await b.measure(server.pid!, httpsPort, 'W3', `lh${round}`, Math.min(b.duration, 3), { outstanding: b.outstanding, mode: 'doh' })
          .catch((err: unknown) => {
            const message = (err as Error).message;
            return { completed: 0, sent: 0, lost: 0, qps: 0, cpuUs: NaN, rcodes: {}, latencies: [], error: (/Error: ?(.*)/.exec(message)?.[1] ?? message.split('\n').at(-1) ?? '').trim() };
          });
        if (tried.completed > 0) doh = tried;
        else {
          dnsperfDoh = `dnsperf -m doh got no answer from the listener (${'error' in tried ? `"${String(tried.error).slice(0, 200)}"` : `${fmt(tried.sent)} sent`})`;
          dohClient = 'bench/doh-load.ts';
        }
      }
      if (doh === null && dohClient === 'bench/doh-load.ts') {
        const file = join(b.dir, `doh-W3-${round}.txt`);
        writeQueries(file, 'W3', b.blocked, b.duration * 20_000 + 1000, `dh${round}`);
        const before = cpuSeconds(server.pid!);
        const r = await runDohLoad(httpsPort, file, b.duration, b.outstanding, certs.ca);
        const serverCpu = cpuSeconds(server.pid!) - before;
        doh = { ...r, cpuUs: (serverCpu * 1e6) / Math.max(1, r.completed) };
        clientLoad.push(`round ${round}: the client used ${fmt(r.clientCpuS, 1)} s of CPU and the server ${fmt(serverCpu, 1)} s in ${fmt(r.elapsedS, 1)} s`);
      } else if (doh === null) {
        doh = await b.measure(server.pid!, httpsPort, 'W3', `lh${round}`, b.duration, { outstanding: b.outstanding, mode: 'doh' });
      }
      rows.push({ round, udp, dot, doh });
    } finally {
      await b.stop(server);
    }
  }
  b.say('### Listeners: W3 over UDP, DNS over TLS and DNS over HTTPS (issue 15)');
  b.say();
  b.say(`One server with \`--listen-tls\` and \`--listen-https\` (test certificate), the three runs one after the other on the same start. ` +
    `UDP and DoT: dnsperf (8 clients: 8 TLS connections, ${fmt(b.outstanding)} outstanding). DoH: ${dohClient === 'dnsperf -m doh' ? 'dnsperf -m doh (POST).' :
      `${dnsperfDoh}; measured instead with bench/doh-load.ts, a Node HTTP/2 client on core 1: 8 sessions, ${fmt(b.outstanding)} streams ` +
      'in flight in all, POST application/dns-message, a query unanswered after 2 s counts as lost.'}`);
  b.say();
  b.say('| round | UDP q/s | DoT q/s | DoH q/s | DoT / UDP | DoH / UDP | lost (UDP, DoT, DoH) | CPU µs per answer (UDP, DoT, DoH) |');
  b.say('|---|---|---|---|---|---|---|---|');
  const lossy: string[] = [];
  for (const r of rows) {
    if (waitShare(r.dot, b.outstanding, b.duration) > WAIT_TOLERATED) lossy.push('DoT');
    b.say(`| ${r.round} | ${fmt(r.udp.qps)} | ${fmt(r.dot.qps)} | ${fmt(r.doh.qps)} | ${fmt(r.dot.qps / r.udp.qps, 2)}× | ${fmt(r.doh.qps / r.udp.qps, 2)}× | ` +
      `${fmt(r.udp.lost)}, ${fmt(r.dot.lost)}, ${fmt(r.doh.lost)} | ${fmt(r.udp.cpuUs, 1)}, ${fmt(r.dot.cpuUs, 1)}, ${fmt(r.doh.cpuUs, 1)} |`);
  }
  b.say();
  if (clientLoad.length > 0) {
    b.say(`DoH load client and server CPU (${clientLoad.join('; ')}): a client near 100% of its time is the limit of the DoH figure, not the server.`);
    b.say();
  }
  if (lossy.length > 0) {
    b.say(`**DoT lost enough queries that dnsperf spent more than ${WAIT_TOLERATED * 100}% of its slots waiting for them.**`);
    b.say();
  }
}

// ---------------------------------------------------------------- issue 18: workers
export async function workersSection(b: Bench): Promise<void> {
  const w: Workload[] = ['W1', 'W2', 'W3', 'W4'];
  const summary = await compareVariants(b, '--workers 2 against --workers 1 (issue 18)',
    'One process pinned to core 0 (baseline) against `--workers 2` pinned to cores 0-1 (each worker its own SO_REUSEPORT socket). ' +
    'The machine has 2 cores: the second worker shares core 1 with dnsperf and nsd (and, on W4, the upstream\'s answers), so this ' +
    'measures what a second process gains on a machine where the load generator takes a core, not a dedicated 2-core server.',
    w, [
      { label: '--workers 1', args: b.sinkholeArgs({ stateDir: join(b.dir, 'workers-1') }), cores: 0 },
      { label: '--workers 2', args: [...b.sinkholeArgs({ stateDir: join(b.dir, 'workers-2') }), '--workers', '2'], cores: '0,1' },
    ]);
  b.say(`Median ratio --workers 2 / --workers 1: ${ratioLine(summary, '--workers 2', w)} (target in issue 18: ≥ 1.7× on a machine with a core per worker).`);
  b.say();
}
