// Fuzzing in `npm test`: 20,000 mutated datagrams and 200 mutated TCP streams from a fixed
// seed (bench/fuzz.ts) against `sinkhole serve` in a child process. Afterwards the server
// answers a blocked and a forwarded name correctly over UDP and TCP, logged no error, and
// its memory stayed bounded. `npm run fuzz -- --packets 10000000` runs the same for long.
import t from 'tap';
import { fuzzProblems, mutatedQuery, Random, runFuzz } from '../bench/fuzz.js';

t.test('the same seed makes the same packets', async (t) => {
  const a = new Random(7);
  const b = new Random(7);
  const first = Array.from({ length: 200 }, () => mutatedQuery(a));
  t.same(first, Array.from({ length: 200 }, () => mutatedQuery(b)));
  t.ok(first.some((m) => m.length > 512), 'some oversized');
  t.ok(first.some((m) => m.length < 12), 'some shorter than a header');
});

t.test('20,000 mutated queries and 200 mutated TCP streams: the server still answers, memory bounded', async (t) => {
  const r = await runFuzz({ packets: 20_000, streams: 200, seed: 13 });
  t.comment(`${r.packets} packets, ${r.streams} streams in ${r.seconds} s (${r.packetsPerSecond}/s): ${r.udpReplies} UDP replies, ` +
    `${r.tcpReplyBytes} TCP reply bytes on ${r.tcpStreamsAnswered} streams, ${r.upstreamQueries} forwarded; RSS ${r.rssMb} MB, peak ${r.peakRssMb} MB`);
  t.equal(r.packets, 20_000, 'all sent');
  t.equal(r.streams, 200, 'all streams opened');
  t.ok(r.udpReplies > 1000, 'the server answered the well-formed ones');
  t.ok(r.tcpStreamsAnswered > 5, `and over TCP (${r.tcpStreamsAnswered} streams)`);
  t.ok(r.upstreamQueries > 100, 'and forwarded some');
  t.same(fuzzProblems(r, 200), [], 'alive, correct answers, no error logged, RSS under 200 MB');
});
