// One client flooding unique names must not starve the others. The server runs in its own
// process (as in production); dnsperf floods from 127.0.0.2 while a "victim" at 127.0.0.3
// asks at 50 q/s; the victim must get its answers, with the upstream up and blackholed.
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { buildQuery, T } from '../../helpers/dns.js';
import { freePort } from '../../helpers/server.js';
import { startUpstream } from '../../helpers/upstream.js';

const CLI = join(import.meta.dirname, '..', '..', '..', 'dist', 'main', 'cli.js');
const hasDnsperf = spawnSync('sh', ['-c', 'command -v dnsperf']).status === 0;

/** The victim: `count` queries at `perSecond` from 127.0.0.3; the fraction answered and the p99 latency. */
async function victim(port: number, names: string[], perSecond: number, count: number): Promise<{ answered: number; p99: number }> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.3', r));
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  socket.on('message', (msg) => {
    const id = msg.readUInt16BE(0);
    const at = sentAt.get(id);
    if (at !== undefined) {
      latencies.push(performance.now() - at);
      sentAt.delete(id);
    }
  });
  for (let i = 0; i < count; i++) {
    const id = i + 1;
    sentAt.set(id, performance.now());
    socket.send(buildQuery(names[i % names.length]!, T.A, { id }), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 1000 / perSecond));
  }
  // Answers still due come within the forward budget (4 s).
  for (let waited = 0; sentAt.size > 0 && waited < 4500; waited += 100) await new Promise((r) => setTimeout(r, 100));
  socket.close();
  latencies.sort((a, b) => a - b);
  return { answered: latencies.length / count, p99: latencies[Math.floor(latencies.length * 0.99)] ?? Infinity };
}

async function floodCase(t: Tap, blackhole: boolean) {
  if (!hasDnsperf) {
    if (process.env.CI) t.fail('dnsperf is missing (apt-get install dnsperf)');
    else t.skip('dnsperf is missing', async () => undefined);
    return;
  }
  let down = false;
  const upstream = await startUpstream((q) => (down ? { drop: true } : { answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.1' }] }));
  t.teardown(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'flood-'));
  writeFileSync(join(dir, 'm.txt'), 'messenger.hotmail.com\n');
  const port = await freePort();
  const server = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', dir],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => server.kill('SIGKILL'));
  // Read stdout all along: a full pipe would stop the server.
  let ready: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  server.stdout.on('data', (c: Buffer) => c.toString().includes('"msg":"ready"') && ready());
  await isReady;
  // The victim's names: a few it will ask again (cached), and a blocked one.
  const names = ['www.example.org', 'mail.example.org', 'intranet.example.org', 'messenger.hotmail.com'];
  await victim(port, names, 100, names.length);
  if (blackhole) down = true;
  const flood = join(dir, 'flood.txt');
  writeFileSync(flood, Array.from({ length: 200_000 }, (_, i) => `n${i}.flood.example A`).join('\n') + '\n');
  const flooder = spawn('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-a', '127.0.0.2', '-d', flood, '-l', '6', '-Q', '30000', '-c', '4', '-q', '30000', '-t', '1'],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  // Listened for from the start: on a loaded machine the victim may outlast the 6 s flood.
  const flooderDone = new Promise((r) => flooder.on('close', r));
  let report = '';
  flooder.stdout.on('data', (c: Buffer) => (report += c.toString()));
  await new Promise((r) => setTimeout(r, 1000));
  const rssBefore = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0);
  const v = await victim(port, names, 50, 200);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0);
  await flooderDone;
  const sent = /Queries sent:\s+(\d+)/.exec(report)?.[1];
  t.comment(`flood of ${sent} queries${blackhole ? ' with the upstream blackholed' : ''}: victim answered ${(v.answered * 100).toFixed(1)}%, p99 ${v.p99.toFixed(1)} ms; RSS ${Math.round(rssBefore / 1024)} -> ${Math.round(rss / 1024)} MB`);
  t.ok(v.answered >= 0.99, `the victim got ${(v.answered * 100).toFixed(1)}% of its answers (at least 99%)`);
  t.ok(rss < 200 * 1024, `memory stays bounded: ${Math.round(rss / 1024)} MB`);
}
type Tap = Test;

t.test('a one-client flood with the upstream up', (t) => floodCase(t, false));
t.test('a one-client flood with the upstream blackholed', (t) => floodCase(t, true));
