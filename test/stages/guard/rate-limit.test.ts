// The per-client rate limiter as a unit, with the clock injected: token buckets per address
// and per /24 or /56, refusals then drops, in-flight limits, exempt networks, bounded memory,
// and a take() that allocates nothing.
import { constants, PerformanceObserver } from 'node:perf_hooks';
import t from 'tap';
import { addressBytes } from '../../../src/wire/answer.js';
import { parseCidr, type Cidr } from '../../../src/stages/policy/cidr.js';
import {
  DEFAULT_RATE_LIMIT, INFLIGHT_DROP, INFLIGHT_REFUSE, RATE_OK, RATE_REFUSE, RateLimiter,
} from '../../../src/stages/guard/rate-limit.js';

/** Sends `count` queries from `address` evenly over [from, from + ms); returns how each was judged. */
function send(limiter: RateLimiter, address: string, count: number, from: number, ms: number): { ok: number; refused: number; dropped: number } {
  const out = { ok: 0, refused: 0, dropped: 0 };
  for (let i = 0; i < count; i++) {
    const v = limiter.take(address, from + (ms * i) / count);
    if (v === RATE_OK) out.ok++;
    else if (v === RATE_REFUSE) out.refused++;
    else out.dropped++;
  }
  return out;
}

const cidr = (text: string): Cidr => parseCidr(text) as Cidr;

t.test('defaults: 200 q/s per address with a burst of 1,000; over it 40 REFUSED then drops', async (t) => {
  t.match(DEFAULT_RATE_LIMIT, { rate: 200, burst: 1000, networkRate: 1000, networkBurst: 5000, refuseRate: 20, refuseBurst: 40, maxInflightPerClient: 256, maxInflight: 8192 });
  const limiter = new RateLimiter();
  t.same(send(limiter, '192.0.2.1', 1000, 0, 0), { ok: 1000, refused: 0, dropped: 0 }, 'a burst of 1,000 at once is answered');
  t.equal(limiter.take('192.0.2.1', 0), RATE_REFUSE, 'the 1,001st is refused');
  t.same(send(limiter, '192.0.2.1', 100, 0, 0), { ok: 0, refused: 39, dropped: 61 }, '40 refusals in all, then drops');
  t.same(send(limiter, '192.0.2.1', 20, 100, 0), { ok: 20, refused: 0, dropped: 0 }, '100 ms later: 20 more (200 q/s)');
  t.equal(limiter.take('192.0.2.1', 100), RATE_REFUSE, 'and the refusal budget refilled by 2 (20/s)');
  t.same(send(limiter, '192.0.2.2', 2000, 0, 10_000), { ok: 2000, refused: 0, dropped: 0 }, 'another address at 200 q/s for 10 s: all answered');
  t.same(limiter.counters, { rateRefused: 41, rateDropped: 61, inflightRefused: 0, inflightDropped: 0, evicted: 0 }, 'counted');
});

t.test('sustained 2x the rate: about the rate answered, 20/s refused, the rest dropped', async (t) => {
  const limiter = new RateLimiter({ burst: 200 });
  const r = send(limiter, '198.51.100.7', 8000, 0, 20_000);
  t.ok(Math.abs(r.ok - (200 + 200 * 20)) <= 2, `answered ${r.ok} (burst 200 + 200/s × 20 s)`);
  t.ok(Math.abs(r.refused - (40 + 20 * 20)) <= 25, `refused ${r.refused} (40 + 20/s)`);
  t.equal(r.ok + r.refused + r.dropped, 8000);
});

t.test('a flooding address does not starve its neighbour in the same /24, nor another network', async (t) => {
  const limiter = new RateLimiter();
  let victim = { ok: 0, refused: 0, dropped: 0 };
  let other = { ok: 0, refused: 0, dropped: 0 };
  // 5 s: the flooder at 40,000 q/s, the victim in its /24 at 50 q/s, a client elsewhere at 150 q/s.
  for (let ms = 0; ms < 5000; ms++) {
    send(limiter, '10.0.0.66', 40, ms, 1);
    if (ms % 20 === 0) victim.ok += limiter.take('10.0.0.7', ms) === RATE_OK ? 1 : 0;
    if (ms % 20 === 0) victim = { ...victim };
    if (ms % 7 === 0) other.ok += limiter.take('172.16.5.5', ms) === RATE_OK ? 1 : 0;
    other = { ...other };
  }
  t.equal(victim.ok, 250, 'the victim got all of its 250 queries answered');
  t.equal(other.ok, Math.ceil(5000 / 7), 'so did the client in another network');
  const flooder = limiter.counters.rateRefused + limiter.counters.rateDropped;
  t.ok(flooder > 190_000, `the flooder's excess was limited (${flooder} of 200,000)`);
  t.ok(limiter.counters.rateRefused < 200, `with at most a refusal budget of REFUSED (${limiter.counters.rateRefused})`);
});

t.test('a /24 or a /56 shares a bucket: many addresses each under the rate are limited together', async (t) => {
  const limiter = new RateLimiter();
  // 20 addresses of 10.1.2.0/24 at 150 q/s each = 3,000 q/s for 10 s; the /24 may have 1,000/s after its burst of 5,000.
  let ok = 0;
  for (let ms = 0; ms < 10_000; ms += 10) {
    for (let h = 1; h <= 20; h++) for (let k = 0; k < 1.5; k++) ok += limiter.take(`10.1.2.${h}`, ms) === RATE_OK ? 1 : 0;
  }
  t.ok(Math.abs(ok - (5000 + 1000 * 10)) < 50, `the /24 got ${ok} answered (5,000 + 1,000/s × 10 s)`);
  t.equal(send(limiter, '10.1.3.1', 100, 10_000, 0).ok, 100, 'a neighbouring /24 is not affected');
  // IPv6: a /56 is the first 7 bytes.
  const v6 = new RateLimiter({ networkBurst: 100, networkRate: 10, burst: 1000 });
  t.equal(send(v6, '2001:db8:0:1200::1', 60, 0, 0).ok, 60);
  t.equal(send(v6, '2001:db8:0:12ff:ffff::1', 60, 0, 0).ok, 40, 'the same /56 (2001:db8:0:1200::/56) shares its 100');
  t.equal(send(v6, '2001:db8:0:1300::1', 60, 0, 0).ok, 60, 'the next /56 has its own');
});

t.test('exempt networks are never limited; IPv4-mapped addresses are the IPv4 client', async (t) => {
  const limiter = new RateLimiter({ exempt: [cidr('10.9.0.0/16'), cidr('fd00::/8')], burst: 10, rate: 10 });
  t.equal(send(limiter, '10.9.1.1', 5000, 0, 1000).ok, 5000, 'exempt IPv4');
  t.equal(send(limiter, '::ffff:10.9.1.2', 5000, 0, 1000).ok, 5000, 'exempt as IPv4-mapped too');
  t.equal(send(limiter, 'fd00::1%eth0', 5000, 0, 1000).ok, 5000, 'exempt IPv6 with a zone');
  t.equal(send(limiter, '10.8.1.1', 10, 0, 0).ok, 10);
  t.equal(limiter.take('::ffff:10.8.1.1', 0), RATE_REFUSE, 'the mapped form shares the plain address\'s bucket');
});

t.test('in flight: per address and in all; tickets survive their entry being given away', async (t) => {
  const limiter = new RateLimiter({ maxInflightPerClient: 3, maxInflight: 5, refuseBurst: 2, refuseRate: 1 });
  const a = [0, 1, 2].map(() => limiter.enter('192.0.2.10', 0));
  t.ok(a.every((x) => x >= 0), 'three may wait');
  t.equal(limiter.enter('192.0.2.10', 0), INFLIGHT_REFUSE, 'the fourth is refused');
  limiter.leave(a[0]!);
  t.ok(limiter.enter('192.0.2.10', 0) >= 0, 'one answered: another may wait');
  const b = [limiter.enter('192.0.2.11', 0), limiter.enter('192.0.2.11', 0)];
  t.ok(b.every((x) => x >= 0) && limiter.inflight === 5, 'five in all');
  t.equal(limiter.enter('192.0.2.12', 0), INFLIGHT_REFUSE, 'the total is reached: a third client is refused');
  t.equal(limiter.enter('192.0.2.12', 0), INFLIGHT_REFUSE);
  t.equal(limiter.enter('192.0.2.12', 0), INFLIGHT_DROP, 'then dropped, its refusal budget spent');
  t.same([limiter.counters.inflightRefused, limiter.counters.inflightDropped], [3, 1]);

  const tiny = new RateLimiter({ tableSize: 4, maxInflightPerClient: 1 });
  const ticket = tiny.enter('192.0.2.20', 0);
  // Fill the one set with newer busy addresses until 192.0.2.20's entry is given away.
  for (let i = 0; i < 20; i++) tiny.enter(`198.51.100.${i}`, 1 + i);
  t.ok(tiny.counters.evicted > 0, 'entries were given away');
  const fresh = tiny.enter('192.0.2.20', 100);
  t.ok(fresh >= 0, 'the address starts again');
  tiny.leave(ticket);
  t.equal(tiny.enter('192.0.2.20', 100), INFLIGHT_REFUSE, 'the old ticket did not free the new entry\'s place');
});

t.test('memory is bounded whatever the flood: a million spoofed addresses, the real flooder still limited', async (t) => {
  const limiter = new RateLimiter({ tableSize: 4096 });
  let flooderOk = 0;
  let now = 0;
  for (let i = 0; i < 1_000_000; i++) {
    now = i / 100; // 100,000 q/s of random addresses for 10 s
    limiter.take(`${(i * 7919) & 255}.${(i >> 8) & 255}.${(i >> 16) & 255}.${i & 255}`, now);
    if (i % 10 === 0) flooderOk += limiter.take('203.0.113.9', now) === RATE_OK ? 1 : 0;
  }
  t.ok(limiter.tracked <= 4096, `at most 4,096 addresses remembered (${limiter.tracked})`);
  t.ok(limiter.counters.evicted > 900_000, 'the rest were forgotten');
  t.ok(flooderOk <= 1000 + 200 * 10 + 5, `the flooder at 10,000 q/s got ${flooderOk} answered (burst + 200/s)`);
});

t.test('address text is read without a parser library: the same bytes as addressBytes', async (t) => {
  const limiter = new RateLimiter();
  const cases = ['0.0.0.0', '255.255.255.255', '192.0.2.1', '::', '::1', '1::', '2001:db8::1', '2001:DB8:0:0:8:800:200C:417A',
    'fe80::1:2:3:4', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:1.2.3.4'];
  const bytes = (limiter as unknown as { bytes: Buffer }).bytes;
  for (const text of cases) {
    t.ok(limiter.parse(text), `${text} parses`);
    const want = addressBytes(text);
    const got = want.length === 4 ? bytes.subarray(12) : bytes;
    t.same([...got], [...want], `${text}: same bytes`);
  }
  for (const bad of ['', 'x', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1::2::3', ':1', '1:', '12345::', '1:2:3:4:5:6:7:8:9', '::1.2.3']) {
    t.notOk(limiter.parse(bad), `"${bad}" is not an address`);
  }
});

t.test('take() allocates nothing: no garbage collection in 2 million calls', async (t) => {
  const limiter = new RateLimiter();
  const addresses = Array.from({ length: 1000 }, (_, i) => (i % 2 ? `10.${i >> 8}.${i & 255}.1` : `2001:db8::${i.toString(16)}`));
  for (let i = 0; i < 10_000; i++) limiter.take(addresses[i % 1000]!, i); // warm up (JIT, tables)
  await new Promise((r) => setTimeout(r, 50));
  // Young-generation collections (scavenges) only: an old-generation one may be finishing
  // the earlier tests' work. 2 million takes that each made even 16 bytes would fill the
  // young generation (1-16 MB) several times over.
  const gcs: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs.push(1);
  });
  observer.observe({ entryTypes: ['gc'] });
  const started = performance.now();
  let ok = 0;
  // Whole milliseconds: a fractional `now` is a heap number the caller makes (performance.now() makes one anyway).
  for (let i = 0; i < 2_000_000; i++) ok += limiter.take(addresses[i % 1000]!, 10_000 + i) === RATE_OK ? 1 : 0;
  const ns = ((performance.now() - started) * 1e6) / 2_000_000;
  await new Promise((r) => setTimeout(r, 100));
  observer.disconnect();
  t.ok(gcs.length <= 1, `no young-generation collection during the loop (${gcs.length}; ${ns.toFixed(0)} ns per take)`);
  t.ok(ok > 0);
});

t.test('report(): one summary per interval, then nothing until something is limited again', async (t) => {
  const limiter = new RateLimiter({ burst: 1, rate: 1 });
  t.equal(limiter.report(), null, 'nothing limited yet');
  send(limiter, '192.0.2.1', 10, 0, 0);
  send(limiter, '192.0.2.2', 5, 0, 0);
  t.same(limiter.report(), { limited: 13, refused: 13, dropped: 0, clients: 2, example: '192.0.2.2' });
  t.equal(limiter.report(), null, 'reset');
  send(limiter, '192.0.2.1', 3, 0, 0);
  t.match(limiter.report(), { limited: 3, clients: 1 });
});
