// Reload under load: a server holding a 1,000,000-rule folder answers a steady query stream
// while the folder changes and is reloaded. Reports the reload time (from the server's log
// line), queries lost, worst and 99th-percentile latency during the reload, and memory.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { buildQuery } from '../src/wire/build-query.js';
import { percentile } from './dnsperf.js';
import { firstAnswer, memoryMb, startSinkhole, stop } from './processes.js';

export interface ReloadResult {
  rules: number;
  reloadMs: number;
  sent: number;
  lost: number;
  p99Ms: number;
  worstMs: number;
  rssBeforeMb: number;
  rssPeakMb: number;
}

export async function reloadBench(opts: { dir: string; listsDir: string; rules: number; port: number; upstream: string; rate: number }): Promise<ReloadResult> {
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
    // id -> when it was sent and whether during the reload: a query counts as during the
    // reload by when it was sent, whenever its answer comes.
    const sentAt = new Map<number, { t0: number; duringReload: boolean }>();
    const latencies: number[] = [];
    let id = 0;
    let sent = 0;
    let inReload = false;
    socket.on('message', (msg) => {
      const sent = sentAt.get(msg.readUInt16BE(0));
      if (sent === undefined) return;
      sentAt.delete(msg.readUInt16BE(0));
      if (sent.duringReload) latencies.push(performance.now() - sent.t0);
    });
    // Blocked names and cached names: what is measured is the server, not the upstream.
    const names = ['x.messenger.hotmail.com', 'h1.bench.test', 'h2.bench.test', 'www.meebo.com'];
    for (const name of names) await firstAnswer(opts.port, name, performance.now());
    const perTick = Math.max(1, Math.round(opts.rate / 1000));
    let reloadSent = 0;
    const ticker = setInterval(() => {
      for (let i = 0; i < perTick; i++) {
        id = (id + 1) & 0xffff;
        sentAt.set(id, { t0: performance.now(), duringReload: inReload });
        socket.send(buildQuery(names[id % names.length]!, 'A', { id }), opts.port, '127.0.0.1');
        if (inReload) reloadSent++;
        sent++;
      }
    }, 1);
    await new Promise((r) => setTimeout(r, 1000));
    // The change: one line appended to the big file, so the whole million is read again.
    inReload = true;
    let rssPeakMb = rssBeforeMb;
    const sampler = setInterval(() => {
      rssPeakMb = Math.max(rssPeakMb, memoryMb(server.pid!).rss);
    }, 50);
    const before = readFileSync(log, 'utf8').split('"blocklists reloaded"').length;
    appendFileSync(join(opts.listsDir, 'bench.txt'), 'appended-during-bench.example\n');
    let reloadMs = -1;
    for (let i = 0; i < 600 && reloadMs < 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const text = readFileSync(log, 'utf8');
      if (text.split('"blocklists reloaded"').length > before) {
        const line = text.split('\n').filter((l) => l.includes('"blocklists reloaded"')).at(-1)!;
        reloadMs = (JSON.parse(line) as { ms: number }).ms;
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    inReload = false;
    clearInterval(ticker);
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 2000));
    socket.close();
    const lostDuring = reloadSent - latencies.length;
    latencies.sort((a, b) => a - b);
    return {
      rules: opts.rules, reloadMs, sent: reloadSent, lost: lostDuring, p99Ms: percentile(latencies, 99),
      worstMs: latencies.at(-1) ?? NaN, rssBeforeMb, rssPeakMb,
    };
  } finally {
    await stop(server);
  }
}
