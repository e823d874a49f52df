// Fleet figures (docs/fleet.md), built with `npx tsc -p tsconfig.bench.json`:
//   node dist-bench/bench/fleet.js appends [N]    a primary and two replicas (default fleet
//        timings and reload debounce) on a redis-server of its own: N appends (default 50)
//        to the primary's list, the time until both replicas block the new name: p50, p99
//   node dist-bench/bench/fleet.js traffic [Q]    one primary and one replica; Q queries
//        (default 10,000) to the replica at about 1,000/s, mixed as a school network asks
//        (50 % a hot set of 200 names, 30 % names seen once, 20 % blocked); Redis commands
//        counted with `INFO commandstats`, per 1,000 queries and, idle, per second (over
//        IDLE seconds first, default 30: node dist-bench/bench/fleet.js traffic Q IDLE)
// --json: the figures as one JSON line as well (how `npm run bench` runs it: sections.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { buildConfig } from '../src/config/config.js';
import { startServer, type RunningServer } from '../src/main/serve.js';
import { buildQuery } from '../src/wire/build-query.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const tmp = mkdtempSync(join(tmpdir(), 'sinkhole-fleet-bench-'));
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function startRedis(): Promise<number> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
  children.push(child);
  for (let i = 0; i < 250 && cli(port, 'PING') !== 'PONG'; i++) await sleep(20);
  return port;
}

function cli(port: number, ...args: string[]): string {
  return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();
}

/** An upstream that answers every A query with 192.0.2.1, TTL 300. */
async function startUpstream(): Promise<number> {
  const s = createSocket('udp4');
  s.on('message', (msg, rinfo) => {
    const reply = Buffer.concat([msg, Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, 1])]);
    reply[2] = 0x81;
    reply[3] = 0x80;
    reply.writeUInt16BE(1, 6);
    s.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s.address().port;
}

const client = createSocket('udp4');
const waiting = new Map<number, (reply: Buffer) => void>();
client.on('message', (m) => waiting.get(m.readUInt16BE(0))?.(m));
let nextId = 1;

function ask(port: number, name: string): Promise<Buffer | null> {
  const msg = buildQuery(name, 'A');
  const id = nextId++ & 0xffff;
  msg.writeUInt16BE(id, 0);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      resolve(null);
    }, 2000);
    waiting.set(id, (reply) => {
      clearTimeout(timer);
      waiting.delete(id);
      resolve(reply);
    });
    client.send(msg, port, '127.0.0.1');
  });
}

const isBlocked = async (port: number, name: string): Promise<boolean> => {
  const r = await ask(port, name);
  return r !== null && r.subarray(-4).equals(Buffer.from([127, 0, 0, 1]));
};

async function node(redis: number, upstream: number, name: string, role: string, dir: string): Promise<{ port: number; server: RunningServer }> {
  const port = await freePort();
  const config = buildConfig(['--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${upstream}`, '--blocklists', dir, '--rate-limit', '0',
    '--network-rate-limit', '0', '--redis', `redis://127.0.0.1:${redis}`, '--node-name', name, '--fleet-role', role, '--state-dir', join(tmp, `state-${name}`)]);
  const log = pino({ level: 'warn', base: undefined }, new Writable({ write: (_c, _e, done) => done() }));
  const server = await startServer(config, { log, flush: () => undefined, reopen: () => undefined });
  return { port, server };
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function appends(n: number): Promise<void> {
  const redis = await startRedis();
  const upstream = await startUpstream();
  const dir = join(tmp, 'primary');
  const own = join(tmp, 'own');
  for (const d of [dir, own]) spawnSync('mkdir', ['-p', d]);
  writeFileSync(join(dir, 'list.txt'), 'first.example\n');
  const p = await node(redis, upstream, 'p', 'primary', dir);
  const replicas = [await node(redis, upstream, 'r1', 'replica', own), await node(redis, upstream, 'r2', 'replica', own)];
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = `append${i}.example`;
    const started = performance.now();
    appendFileSync(join(dir, 'list.txt'), `${name}\n`);
    await Promise.all(replicas.map(async (r) => {
      while (!(await isBlocked(r.port, name))) await sleep(5);
    }));
    times.push(performance.now() - started);
    await sleep(100);
  }
  times.sort((a, b) => a - b);
  json({ appends: n, p50: percentile(times, 50), p99: percentile(times, 99), max: times[times.length - 1]! });
  console.log(`append on the primary -> blocked on both replicas, ${n} appends (default reload debounce 250 ms): ` +
    `p50 ${percentile(times, 50).toFixed(0)} ms, p99 ${percentile(times, 99).toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms`);
  for (const s of [...replicas, p]) await s.server.stop();
}

function commandstats(port: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of cli(port, 'INFO', 'commandstats').split('\n')) {
    const m = /^cmdstat_([a-z|]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const asJson = process.argv.includes('--json');
function json(figures: Record<string, number | string>): void {
  if (asJson) console.log(JSON.stringify(figures));
}

async function traffic(q: number, idleSeconds: number): Promise<void> {
  const redis = await startRedis();
  const upstream = await startUpstream();
  const dir = join(tmp, 'primary');
  const own = join(tmp, 'own');
  for (const d of [dir, own]) spawnSync('mkdir', ['-p', d]);
  writeFileSync(join(dir, 'list.txt'), Array.from({ length: 100 }, (_, i) => `blocked${i}.example`).join('\n'));
  const p = await node(redis, upstream, 'p', 'primary', dir);
  const r = await node(redis, upstream, 'r', 'replica', own);
  // Idle cost first: both nodes, nothing asked.
  cli(redis, 'CONFIG', 'RESETSTAT');
  await sleep(idleSeconds * 1000);
  const idle = commandstats(redis);
  const idleTotal = [...idle.values()].reduce((a, b) => a + b, 0) - (idle.get('config|resetstat') ?? 0) - (idle.get('info') ?? 0);
  cli(redis, 'CONFIG', 'RESETSTAT');
  const started = performance.now();
  let unique = 0;
  let lost = 0;
  for (let i = 0; i < q; i++) {
    const roll = i % 10;
    const name = roll < 5 ? `hot${i % 200}.example.com` : roll < 8 ? `once${unique++}.example.com` : `blocked${i % 100}.example`;
    if ((await ask(r.port, name)) === null) lost++;
    // About 1,000 queries a second.
    const due = started + i;
    const ahead = due - performance.now();
    if (ahead > 1) await sleep(ahead);
  }
  const seconds = (performance.now() - started) / 1000;
  await sleep(6000); // one figures flush and a few cache batches after the last query
  const busy = commandstats(redis);
  const total = [...busy.entries()].filter(([k]) => k !== 'config|resetstat' && k !== 'info').reduce((a, [, b]) => a + b, 0);
  const fixed = (idleTotal / idleSeconds) * (seconds + 6);
  const byCommand = [...busy.entries()].filter(([k]) => k !== 'config|resetstat' && k !== 'info').sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  json({ queries: q, lost, perThousand: total / (q / 1000), idlePerSecond: idleTotal / idleSeconds, byCommand });
  console.log(`${q} queries in ${seconds.toFixed(1)} s to the replica (${lost} lost; 50 % hot set, 30 % new names, 20 % blocked)`);
  console.log(`Redis commands: ${total} in all, ${(total / (q / 1000)).toFixed(0)} per 1,000 queries; ` +
    `of which about ${fixed.toFixed(0)} would have been sent idle (${(idleTotal / idleSeconds).toFixed(2)}/s for two nodes)`);
  console.log(`by command: ${[...busy.entries()].filter(([k]) => k !== 'config|resetstat' && k !== 'info').sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`idle, per second for two nodes: ${[...idle.entries()].filter(([k]) => k !== 'config|resetstat' && k !== 'info').sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / idleSeconds).toFixed(2)}`).join(', ')}`);
  const mem = /used_memory:(\d+)/.exec(cli(redis, 'INFO', 'memory'));
  const keys = cli(redis, 'DBSIZE');
  console.log(`Redis memory: ${(Number(mem?.[1] ?? 0) / 1e6).toFixed(1)} MB for ${keys} keys`);
  for (const s of [r, p]) await s.server.stop();
}

const [mode, arg, arg2] = process.argv.slice(2).filter((a) => a !== '--json');
try {
  await new Promise<void>((res) => client.bind(0, '127.0.0.1', res));
  if (mode === 'appends') await appends(Number(arg ?? 50));
  else if (mode === 'traffic') await traffic(Number(arg ?? 10_000), Number(arg2 ?? 30));
  else console.error('usage: node dist-bench/bench/fleet.js appends [N] | traffic [Q [IDLE-SECONDS]] [--json]');
} finally {
  client.close();
  for (const c of children) if (c.exitCode === null) process.kill(c.pid!, 'SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}
// The stopped servers' Redis clients keep retrying the killed redis-server (and so the
// event loop alive): the figures are out, so leave.
process.exit(0);
