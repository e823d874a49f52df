// Reload under load: a server holding a 1,000,000-rule folder answers a steady query stream
// (10,000 q/s) while lines are appended to it, one at a time. Reports, per append, the time
// until the appended name is blocked and the reload time the server logged; queries lost,
// worst and 99th-percentile latency during the reloads, and memory. Runs in `npm run bench`
// or alone (see main at the end).
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket, type Socket } from 'node:dgram';
import { buildQuery } from '../src/wire/build-query.js';
import { percentile } from './dnsperf.js';
import { blockedNames, writeLists } from './generate.js';
import { firstAnswer, memoryMb, startSinkhole, stop } from './processes.js';

export interface ReloadResult {
  rules: number;
  /** The reload time the server logged, per append. */
  reloadMs: number[];
  /** From the append to the first blocked answer for the appended name, per append. */
  effectMs: number[];
  sent: number;
  lost: number;
  p99Ms: number;
  worstMs: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  /** The same load between reloads: what the machine gives without any reload. */
  outside: { sent: number; lost: number; p99Ms: number; worstMs: number };
}

/**
 * Sends `rate` queries a second, spread over 1 ms ticks and caught up by the clock (a
 * setInterval alone falls behind on a busy machine), to `port`. Latencies of queries sent
 * while `during()` is true are collected.
 */
function steadyLoad(socket: Socket, port: number, names: string[], rate: number, during: () => boolean) {
  const sentAt = new Map<number, { t0: number; during: boolean }>();
  const latencies: number[] = [];
  const outside: number[] = [];
  let id = 0;
  let sent = 0;
  let sentDuring = 0;
  let sentOutside = 0;
  socket.on('message', (msg) => {
    const query = sentAt.get(msg.readUInt16BE(0));
    if (query === undefined) return;
    sentAt.delete(msg.readUInt16BE(0));
    (query.during ? latencies : outside).push(performance.now() - query.t0);
  });
  const startedAt = performance.now();
  const ticker = setInterval(() => {
    const due = Math.floor(((performance.now() - startedAt) * rate) / 1000);
    // At most 50 ms of backlog at once: a stalled client must not burst.
    if (due - sent > rate / 20) sent = due - Math.floor(rate / 20);
    while (sent < due) {
      id = (id + 1) & 0xffff;
      const now = during();
      sentAt.set(id, { t0: performance.now(), during: now });
      socket.send(buildQuery(names[id % names.length]!, 'A', { id }), port, '127.0.0.1');
      if (now) sentDuring++;
      else sentOutside++;
      sent++;
    }
  }, 1);
  return { latencies, outside, stop: () => clearInterval(ticker), sentDuring: () => sentDuring, sentOutside: () => sentOutside };
}

export async function reloadBench(opts: { dir: string; listsDir: string; rules: number; port: number; upstream: string; rate: number; appends?: number }): Promise<ReloadResult> {
  const log = join(opts.dir, 'reload-server.log');
  const started = performance.now();
  // With the production V8 flags, like every sinkhole the benchmark starts (issue 18).
  const server = startSinkhole(0, ['--listen', `127.0.0.1:${opts.port}`, '--upstream', opts.upstream, '--blocklists', opts.listsDir,
    '--state-dir', join(opts.dir, 'state')], log);
  try {
    await firstAnswer(opts.port, 'messenger.hotmail.com', started);
    await new Promise((r) => setTimeout(r, 1000));
    const rssBeforeMb = memoryMb(server.pid!).rss;
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    // Blocked names and cached names: what is measured is the server, not the upstream.
    const names = ['x.messenger.hotmail.com', 'h1.bench.test', 'h2.bench.test', 'www.meebo.com'];
    for (const name of names) await firstAnswer(opts.port, name, performance.now());
    // A query counts as during the reload by when it was sent, whenever its answer comes.
    let inReload = false;
    const load = steadyLoad(socket, opts.port, names, opts.rate, () => inReload);
    await new Promise((r) => setTimeout(r, 1000));
    let rssPeakMb = rssBeforeMb;
    const sampler = setInterval(() => {
      rssPeakMb = Math.max(rssPeakMb, memoryMb(server.pid!).rss);
    }, 50);
    const reloadMs: number[] = [];
    const effectMs: number[] = [];
    for (let n = 0; n < (opts.appends ?? 3); n++) {
      // The change: one line appended to the big file.
      inReload = true;
      const before = readFileSync(log, 'utf8').split('"blocklists reloaded"').length;
      const name = `appended-${n}-during-bench.example`;
      const t0 = performance.now();
      appendFileSync(join(opts.listsDir, 'bench.txt'), `${name}\n`);
      effectMs.push(await untilBlocked(opts.port, name, t0));
      for (let i = 0; i < 600; i++) {
        const text = readFileSync(log, 'utf8');
        if (text.split('"blocklists reloaded"').length > before) {
          const line = text.split('\n').filter((l) => l.includes('"blocklists reloaded"')).at(-1)!;
          reloadMs.push((JSON.parse(line) as { ms: number }).ms);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300));
      inReload = false;
      await new Promise((r) => setTimeout(r, 1000));
    }
    load.stop();
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 2000));
    socket.close();
    const latencies = load.latencies.sort((a, b) => a - b);
    const outside = load.outside.sort((a, b) => a - b);
    return {
      rules: opts.rules, reloadMs, effectMs, sent: load.sentDuring(), lost: load.sentDuring() - latencies.length,
      p99Ms: percentile(latencies, 99), worstMs: latencies.at(-1) ?? NaN, rssBeforeMb, rssPeakMb,
      outside: { sent: load.sentOutside(), lost: load.sentOutside() - outside.length, p99Ms: percentile(outside, 99), worstMs: outside.at(-1) ?? NaN },
    };
  } finally {
    await stop(server);
  }
}

/** Asks for `name` every 20 ms until the answer is the sinkhole address; ms since `since` (-1 after 30 s). */
async function untilBlocked(port: number, name: string, since: number): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  try {
    return await new Promise<number>((resolve) => {
      socket.on('message', (msg) => {
        // The answer's A data: the last 4 bytes of a one-answer reply without EDNS.
        if (msg.readUInt16BE(6) > 0 && msg.subarray(msg.length - 4).equals(Buffer.from([127, 0, 0, 1]))) {
          clearInterval(timer);
          resolve(performance.now() - since);
        }
      });
      const timer = setInterval(() => {
        if (performance.now() - since > 30_000) {
          clearInterval(timer);
          resolve(-1);
        }
        socket.send(buildQuery(name, 'A'), port, '127.0.0.1');
      }, 20);
    });
  } finally {
    socket.close();
  }
}

/** An upstream for the names the load asks that are not blocked: any A question gets 192.0.2.1. */
async function tinyUpstream(): Promise<{ port: number; close: () => void }> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, from) => {
    // The question ends 4 bytes after its name; answer with a pointer to it, TTL 1 day.
    let at = 12;
    while (at < msg.length && msg[at] !== 0) at += msg[at]! + 1;
    const question = msg.subarray(0, at + 5);
    const reply = Buffer.concat([question, Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 1, 0x51, 0x80, 0, 4, 192, 0, 2, 1])]);
    reply[2] = 0x81;
    reply[3] = 0x80;
    reply.writeUInt16BE(1, 6);
    reply.writeUInt16BE(0, 8);
    reply.writeUInt16BE(0, 10);
    socket.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { port: socket.address().port, close: () => socket.close() };
}

/**
 * Alone: `node dist-bench/bench/reload.js [--rules N] [--rate Q] [--appends K] [--port P]`
 * (defaults 1,000,000 rules, 10,000 q/s, 3 appends), with an upstream of its own.
 */
async function main(argv: string[]): Promise<void> {
  const value = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag);
    return i < 0 ? fallback : Number(argv[i + 1]);
  };
  const rules = value('--rules', 1_000_000);
  const rate = value('--rate', 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-reload-bench-'));
  const upstream = await tinyUpstream();
  try {
    mkdirSync(join(dir, 'lists'));
    const lists = writeLists(dir, blockedNames(rules));
    const r = await reloadBench({ dir, listsDir: lists.sinkholeDir, rules, port: value('--port', 15499),
      upstream: `127.0.0.1:${upstream.port}`, rate, appends: value('--appends', 3) });
    console.log(JSON.stringify({ rate, ...r }));
  } finally {
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) await main(process.argv.slice(2));
