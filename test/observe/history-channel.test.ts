// The ring that carries batches from the DNS thread to the history writer thread (channel.ts):
// what goes in comes out whole and in order, across the end of the ring and across threads;
// a full ring refuses a batch and loses nothing already in it; and the writer thread sends
// the DNS thread no message per batch (the lock a message takes is the priority inversion
// channel.ts is there to avoid).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { emptyRows, LONG_NAME, NAME_SLOT, setQnameKey, type Batch } from '../../src/observe/history/batch.js';
import { BatchChannel } from '../../src/observe/history/channel.js';
import { WriterThread } from '../../src/observe/history/writer-thread.js';

/** A batch of `n` rows whose every value depends on `seed` and the row, with one long qname and texts in several scripts. */
function batch(seed: number, n: number): Batch {
  const rows = emptyRows(n);
  rows.n = n;
  for (let i = 0; i < n; i++) {
    rows.at[i] = 1_790_000_000_000 + seed * 1000 + i;
    rows.client[i] = 1 + (i % 2);
    setQnameKey(rows, i, i === 1 ? `${'x'.repeat(70)}${seed}.example` : `n${seed}-${i}.web.whatsapp.com`);
    rows.qtype[i] = i % 3 === 0 ? 28 : 1;
    rows.verdict[i] = 1;
    rows.rcode[i] = i % 4;
    rows.upstream[i] = 0;
    rows.latencyMs[i] = i % 5 === 0 ? NaN : i / 4;
    rows.bundle[i] = 3;
    rows.ruleFile[i] = 4;
    rows.ruleLine[i] = seed + i;
  }
  return {
    rows,
    texts: ['', `192.168.1.${seed % 250}`, 'fd00::1', 'whatsapp', `blocklists/тест-${seed}.txt`],
    rollups: [{ hour: 493_000 + seed, client: '10.0.0.7', bundle: 'telegram', verdict: 1, count: seed + 1, first: 5, last: 9 }],
    clients: { [`192.168.1.${seed % 250}`]: { name: `laptop-${seed}`, group: 'kids' }, 'fd00::1': { name: '', group: 'default' } },
    node: 'gw1',
  };
}

/** The rows' values as plain arrays (only the first n of each column; qnames as text). */
function plain(b: Batch): unknown {
  const r = b.rows;
  const qnames: string[] = [];
  for (let i = 0; i < r.n; i++) {
    qnames.push(r.nameLength[i] === LONG_NAME ? r.longNames[i]! : Buffer.from(r.names.subarray(i * NAME_SLOT, i * NAME_SLOT + r.nameLength[i]!)).toString('latin1'));
  }
  const first = (a: ArrayLike<number>): number[] => Array.from(a).slice(0, r.n);
  return {
    n: r.n, qnames, at: first(r.at), client: first(r.client), qtype: first(r.qtype), verdict: first(r.verdict), rcode: first(r.rcode),
    upstream: first(r.upstream), latencyMs: first(r.latencyMs).map((x) => (Number.isNaN(x) ? 'NaN' : x)), bundle: first(r.bundle),
    ruleFile: first(r.ruleFile), ruleLine: first(r.ruleLine), texts: b.texts, rollups: b.rollups, clients: b.clients, node: b.node,
  };
}

t.test('a batch comes out as it went in: every column, long qnames, texts, roll-ups, clients', async (t) => {
  const ring = new BatchChannel(64 * 1024);
  t.equal(ring.take(), null, 'nothing yet');
  const b = batch(7, 40);
  t.ok(ring.put(b));
  t.ok(ring.used() > 40 * BatchChannel.bytesPerRow, 'the ring holds it');
  t.same(plain(ring.take()!), plain(b));
  t.equal(ring.take(), null);
  t.equal(ring.used(), 0, 'taken: the room is free again');
  t.ok(ring.put(batch(8, 0)), 'a batch of roll-ups only');
  t.same(plain(ring.take()!), plain(batch(8, 0)));
});

t.test('round after round past the end of the ring: in order and whole', async (t) => {
  const ring = new BatchChannel(8192);
  t.equal(ring.capacity, 8192);
  let next = 0;
  let wrong = 0;
  let refused = 0;
  // Rows of 3, 5 and 9: records of different sizes, so the wrap falls at different places;
  // two or three batches in the ring at a time.
  for (let seed = 0; seed < 300; seed++) {
    if (!ring.put(batch(seed, [3, 5, 9][seed % 3]!))) refused++;
    if (seed % 3 === 2) {
      for (let got = ring.take(); got !== null; got = ring.take()) {
        if (JSON.stringify(plain(got)) !== JSON.stringify(plain(batch(next, [3, 5, 9][next % 3]!)))) wrong++;
        next++;
      }
    }
  }
  t.equal(refused, 0, 'none refused');
  t.equal(next, 300, 'all 300 taken');
  t.equal(wrong, 0, 'each equal to what was put, in order');
  t.equal(ring.used(), 0);
});

t.test('a full ring refuses a batch and keeps what it holds; a batch larger than half the ring is refused', async (t) => {
  const ring = new BatchChannel(4096);
  let put = 0;
  while (ring.put(batch(put, 5))) put++;
  t.ok(put >= 2, `${put} batches fit`);
  t.notOk(ring.put(batch(99, 5)), 'full: refused');
  const taken = [];
  for (let got = ring.take(); got !== null; got = ring.take()) taken.push(got);
  t.same(taken.map(plain), Array.from({ length: put }, (_, i) => plain(batch(i, 5))), 'what it held, untouched');
  t.ok(ring.put(batch(100, 5)), 'room again');
  t.notOk(ring.put(batch(101, 40)), `${40 * BatchChannel.bytesPerRow} bytes of rows: more than half of 4096`);
});

t.test('from one thread to another: 2,000 batches, every one whole and in order', async (t) => {
  const ring = new BatchChannel(256 * 1024);
  // The reader polls as the writer thread does.
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const reader = new Worker(new URL(`../fixtures/channel-reader.${ext}`, import.meta.url), { workerData: { shared: ring.shared, count: 2000 } });
  t.teardown(() => reader.terminate());
  const done = new Promise<[number, number, string, string][]>((r) => reader.once('message', r));
  let refused = 0;
  for (let seed = 0; seed < 2000;) {
    if (ring.put(batch(seed, 1 + (seed % 50)))) seed++;
    else {
      refused++;
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  const sums = await done;
  const expected = Array.from({ length: 2000 }, (_, seed) => {
    const b = batch(seed, 1 + (seed % 50));
    let sum = 0;
    for (let i = 0; i < b.rows.n; i++) sum += b.rows.ruleLine[i]! + (b.rows.at[i]! % 1000);
    return [b.rows.n, sum, b.texts[1], `laptop-${seed}`];
  });
  t.same(sums, expected, `all 2,000 as put (the ring was full ${refused} times, and the writer waited)`);
});

t.test('the writer thread sends no message per batch: figures come through shared memory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-channel-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const thread = new WriterThread({ stateDir: dir, days: 90, queueLimit: 10_000, retryMs: 1000 }, { warn: (m) => t.fail(m), info: () => undefined });
  // Retention at start answers with one message.
  for (const end = Date.now() + 20_000; thread.messages < 1 && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
  t.equal(thread.messages, 1, 'retention at start answered');
  for (let seed = 0; seed < 50; seed++) {
    thread.write(batch(seed, 20));
    await new Promise((r) => setTimeout(r, 5));
  }
  for (const end = Date.now() + 20_000; thread.stats.written < 50 * 20 && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
  t.equal(thread.stats.written, 1000, 'the 1,000 rows written, as the shared figures say');
  t.equal(thread.stats.received, 1000);
  t.equal(thread.inFlight(), 0);
  t.ok(thread.stats.databaseBytes > 0, 'the database size too');
  t.equal(thread.messages, 1, 'and not one message for them');
  await thread.close();
});
