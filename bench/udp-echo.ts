// The floor under sinkhole's UDP path: a trivial echo server (answer = the query with QR set,
// through the listener's handler and send) on node:dgram and on the batched addon, each
// pinned to one core and driven by dnsperf on the other; queries/s and CPU µs per query.
//
//   node dist-bench/bench/udp-echo.js [seconds] [rounds]      run the comparison
//   node dist-bench/bench/udp-echo.js serve MODE PORT         one echo server (MODE below)
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenUdp, type QueryHandler } from '../src/net/udp.js';
import { listenUdpBatched, loadBatchUdp } from '../src/net/batch-udp.js';

const MODES = ['dgram', 'batched', 'batched-no-address-cache'] as const;
type Mode = (typeof MODES)[number];

const echo: QueryHandler = (msg, address, port, transport) => {
  msg[2]! |= 0x80;
  transport.send(msg, address, port);
};

async function serve(mode: Mode, port: number): Promise<void> {
  const endpoint = { host: '127.0.0.1', port, family: 4 as const, label: `127.0.0.1:${port}` };
  const onError = (err: Error): void => console.error(err.message);
  let queries = 0;
  const counted: QueryHandler = (msg, address, port, transport) => {
    queries++;
    echo(msg, address, port, transport);
  };
  if (mode === 'dgram') await listenUdp(endpoint, counted, onError);
  else {
    const listener = await listenUdpBatched(endpoint, counted, onError, { addressCache: mode === 'batched' });
    // The mean batch says how much each recvmmsg and call into JavaScript is shared.
    process.once('SIGTERM', () => {
      console.log(`${mode}: ${queries} queries in ${listener.batches} batches (${(queries / Math.max(1, listener.batches)).toFixed(1)} per batch)`);
      process.exit(0);
    });
  }
}

async function compare(seconds: number, rounds: number): Promise<void> {
  // Not imported by the server role: it installs its own SIGTERM handler.
  const { cpuSeconds, firstAnswer, haveTool, startPinned, stop } = await import('./processes.js');
  if (!haveTool('dnsperf') || !haveTool('taskset')) throw new Error('udp-echo: needs dnsperf and taskset (apt-get install dnsperf util-linux)');
  const load = loadBatchUdp();
  if (load.addon === null) throw new Error(`udp-echo: ${load.reason}`);
  const file = join(tmpdir(), `udp-echo-${process.pid}.txt`);
  writeFileSync(file, Array.from({ length: 1000 }, (_, i) => `host${i}.example.com A\n`).join(''));
  const script = new URL(import.meta.url).pathname;
  const log = join(tmpdir(), `udp-echo-${process.pid}.log`);
  writeFileSync(log, '');
  console.log(`| mode | round | queries/s | lost | CPU µs/query |\n|---|---|---|---|---|`);
  for (let round = 1; round <= rounds; round++) {
    for (const mode of MODES) {
      const port = 20000 + Math.floor(Math.random() * 20000);
      const server = startPinned(1, process.execPath, [script, 'serve', mode, String(port)], log);
      await firstAnswer(port, 'warmup.example', performance.now(), 10000);
      const before = cpuSeconds(server.pid!);
      const run = spawnSync('taskset', ['-c', '0', 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', file,
        '-c', '8', '-q', '200', '-l', String(seconds)], { encoding: 'utf8' });
      const cpu = cpuSeconds(server.pid!) - before;
      await stop(server);
      const num = (re: RegExp): number => Number(re.exec(run.stdout)?.[1] ?? NaN);
      const completed = num(/Queries completed:\s+(\d+)/);
      console.log(`| ${mode} | ${round} | ${Math.round(num(/Queries per second:\s+([\d.]+)/))} | ${num(/Queries lost:\s+(\d+)/)} | ` +
        `${((cpu * 1e6) / completed).toFixed(2)} |`);
    }
  }
  console.log(readFileSync(log, 'utf8').trim().split('\n').map((l) => `- ${l}`).join('\n'));
}

const [, , first, second, third] = process.argv;
if (first === 'serve') await serve(second as Mode, Number(third));
else await compare(Number(first ?? 5), Number(second ?? 2));
