// `node dist-bench/bench/pipeline-micro.js [W1|W1e|W2] [seconds] [rounds]` (W1e: W1 with EDNS): the JavaScript of the
// query path alone, without sockets: the stage chain `sinkhole serve` builds (guard, policy,
// local, cache; default options, the benchmark's 100,000-rule list), the blocked-query log as
// observer, a transport that only counts. Nanoseconds per query, for comparing changes to the
// hot path quickly and with little noise (add --cpu-prof to node for a profile). The history
// observer (its own thread, SQLite) is left out: bench/history.ts measures it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { buildConfig } from '../src/config/config.js';
import type { Transport } from '../src/net/transport.js';
import { BlockedQueryLog } from '../src/observe/blocked-log.js';
import { Pipeline } from '../src/pipeline/pipeline.js';
import { PASS, type Stage } from '../src/pipeline/stage.js';
import { AnswerCache } from '../src/stages/cache/answer-cache.js';
import { CacheStage } from '../src/stages/cache/stage.js';
import { GuardStage } from '../src/stages/guard/stage.js';
import { privateZoneMap } from '../src/stages/local/private-zones.js';
import { LocalStage } from '../src/stages/local/stage.js';
import { NetworkList } from '../src/stages/policy/cidr.js';
import { loadBlocklists } from '../src/stages/policy/load.js';
import { Policy } from '../src/stages/policy/policy.js';
import { PolicyStage } from '../src/stages/policy/stage.js';
import { buildTemplates } from '../src/wire/answer.js';
import { buildQuery } from '../src/wire/build-query.js';
import { packAnswer } from '../src/wire/packed-answer.js';
import { inspectResponse } from '../src/wire/response.js';
import { blockedNames, HOT_SET, random, writeLists } from './generate.js';
import type { Logger } from '../src/observe/log.js';

/** An upstream's answer to `query`: one A or AAAA record, TTL 3600. */
function upstreamAnswer(query: Buffer, qtype: number): Buffer {
  const rdata = qtype === 1 ? Buffer.from([192, 0, 2, 1]) : Buffer.from('20010db8000000000000000000000001', 'hex');
  const rr = Buffer.alloc(12 + rdata.length);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(qtype, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(3600, 6);
  rr.writeUInt16BE(rdata.length, 10);
  rdata.copy(rr, 12);
  const out = Buffer.concat([query, rr]);
  out.writeUInt16BE(0x8180, 2);
  out.writeUInt16BE(1, 6);
  return out;
}

async function main(): Promise<void> {
  const workload = process.argv[2] ?? 'W2';
  const seconds = Number(process.argv[3] ?? 3);
  const rounds = Number(process.argv[4] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-micro-'));
  try {
    mkdirSync(join(dir, 'lists'));
    const blocked = blockedNames(100_000);
    const lists = writeLists(dir, blocked);
    const config = buildConfig(['--blocklists', lists.sinkholeDir, '--upstream', '127.0.0.1:53', '--cache-size', '10000']);
    const report = await loadBlocklists(lists.sinkholeDir, new Map());
    const log = pino({ level: 'info' }, new Writable({ write: (_c, _e, cb) => cb() })) as unknown as Logger;
    const guard = new GuardStage(config.allowNets === null ? null : new NetworkList(config.allowNets), null, null);
    const templates = buildTemplates(config.sinkholeIpv4, config.sinkholeIpv6, config.blockedTtl);
    const policy = new PolicyStage(new Policy(report.ruleSet, null, null), templates);
    const local = new LocalStage({ anyQueries: config.anyQueries, privateZones: privateZoneMap(), forwardZones: null, hosts: null, names: null, templates });
    const store = new AnswerCache(config.cacheSize);
    const cache = new CacheStage(store, { minTtl: config.cacheMinTtl, maxTtl: config.cacheMaxTtl, servfailTtl: config.servfailTtl, staleMaxAge: config.staleMaxAge });
    let forwarded = 0;
    const last: Stage = { name: 'forward', onQuery: () => (forwarded++, PASS) };
    const pipeline = new Pipeline([guard, policy, local, cache, last], log);
    pipeline.setObservers([new BlockedQueryLog(log)]);
    let sent = 0;
    let bytes = 0;
    const transport: Transport = { udp: true, send: (answer) => (sent++, bytes += answer.length) } as Transport;

    const next = random(7);
    const queries: Buffer[] = [];
    for (let i = 0; i < 20_000; i++) {
      const qtype = next() & 1 ? 'A' : 'AAAA';
      const name = workload.startsWith('W1') ? `x${next() % 100000}.${blocked[next() % blocked.length]}` : HOT_SET[next() % HOT_SET.length]!;
      let q = buildQuery(name, qtype);
      // W1e: W1 as most stub resolvers ask, with an EDNS OPT record (UDP size 1232).
      if (workload === 'W1e') {
        q = Buffer.concat([q, Buffer.from([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0])]);
        q.writeUInt16BE(1, 10);
      }
      q.writeUInt16BE(next() & 0xffff, 0);
      queries.push(q);
    }
    // The cache holds every hot name, as after the benchmark's warm-up.
    for (const name of HOT_SET) {
      for (const [qtype, code] of [['A', 1], ['AAAA', 28]] as const) {
        const query = buildQuery(name, qtype);
        const answer = upstreamAnswer(query, code);
        const key = Buffer.concat([Buffer.from(name.split('.').map((l) => String.fromCharCode(l.length) + l).join(''), 'latin1'),
          Buffer.from([0, code >> 8, code & 0xff, 0, 1, 0])]).toString('latin1');
        store.put(key, packAnswer(answer, inspectResponse(answer, query.length)!, Date.now()), 3600);
      }
    }
    let at = 0;
    const run = (n: number): void => {
      for (let i = 0; i < n; i++) {
        pipeline.handle(queries[at]!, '127.0.0.1', 40000 + (i & 7), transport);
        if (++at === queries.length) at = 0;
      }
    };
    run(200_000);  // warm-up: optimized code
    if (forwarded > 0) throw new Error(`${forwarded} queries were not answered by the chain (cache keys wrong?)`);
    for (let r = 1; r <= rounds; r++) {
      // CPU time of this process, not wall time: the machine may be shared. Batches of 64
      // queries with a turn of the event loop between them, as the batched listener has
      // (timers run: the blocked-query log's interval, the LRU's clock).
      let n = 0;
      const start = performance.now();
      const cpu = process.cpuUsage();
      while (performance.now() - start < seconds * 1000) {
        for (let b = 0; b < 100; b++) run(64);
        n += 6400;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const used = process.cpuUsage(cpu);
      const ns = ((used.user + used.system) * 1e3) / n;
      console.log(`${workload} round ${r}: ${n} queries, ${ns.toFixed(0)} ns CPU per query (user ${((used.user * 1e3) / n).toFixed(0)})`);
    }
    if (forwarded > 0 || sent === 0) throw new Error(`${forwarded} forwarded, ${sent} sent`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
