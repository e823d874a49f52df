// A DNS-over-HTTPS load client for `npm run bench` (dnsperf 2.10's `-m doh` gets no answers
// from Node's HTTP/2 server): reads a dnsperf query file ("name TYPE" lines), keeps
// --outstanding POST /dns-query streams in flight over 8 HTTP/2 sessions for --seconds,
// and prints one JSON line as dnsperf's report would give it: sent, completed, lost (no
// answer within 2 s), rcodes (answers by response code), qps (answers a second), and its
// own CPU seconds. Run pinned to a core by sections.ts:
//   node dist-bench/bench/doh-load.js --port P --file F --seconds S --outstanding N --ca CA.pem
import { readFileSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { buildQuery } from '../src/wire/build-query.js';
import { rcodeName } from '../src/wire/constants.js';

const SESSIONS = 8;
const TIMEOUT_MS = 2000;

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? undefined : process.argv[i + 1];
  if (v === undefined) throw new Error(`doh-load: --${name} is missing (usage: --port P --file F --seconds S --outstanding N --ca CA.pem)`);
  return v;
}

const port = Number(arg('port'));
const seconds = Number(arg('seconds'));
const outstanding = Number(arg('outstanding'));
const ca = readFileSync(arg('ca'));
// Built before the clock starts, as dnsperf reads its file first.
const queries = readFileSync(arg('file'), 'utf8').split('\n').filter(Boolean).map((line) => {
  const [name, type] = line.split(' ');
  return buildQuery(name!, type ?? 'A');
});

let sent = 0;
let completed = 0;
/** Answers by response code, as dnsperf's "Response codes:" line counts them. */
const rcodes: Record<string, number> = {};
let lost = 0;
let next = 0;
const started = performance.now();
const cpuAtStart = process.cpuUsage();
const until = started + seconds * 1000;

function send(session: ClientHttp2Session, done: () => void): void {
  // Each call continues one slot of --outstanding; past the time the slot ends.
  if (performance.now() >= until) {
    done();
    return;
  }
  const body = queries[next++ % queries.length]!;
  sent++;
  const stream = session.request({
    [constants.HTTP2_HEADER_METHOD]: 'POST', [constants.HTTP2_HEADER_PATH]: '/dns-query',
    'content-type': 'application/dns-message', accept: 'application/dns-message', 'content-length': body.length,
  });
  let answered = false;
  const finish = (ok: boolean): void => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    if (ok) completed++;
    else lost++;
    send(session, done);
  };
  const timer = setTimeout(() => {
    stream.close(constants.NGHTTP2_CANCEL);
    finish(false);
  }, TIMEOUT_MS);
  let status = 0;
  let bytes = 0;
  let flags = -1;
  stream.on('response', (headers) => (status = Number(headers[constants.HTTP2_HEADER_STATUS])));
  stream.on('data', (c: Buffer) => {
    // The DNS header's second flags byte (offset 3) holds the rcode in its low four bits.
    if (bytes <= 3 && bytes + c.length > 3) flags = c[3 - bytes]!;
    bytes += c.length;
  });
  stream.on('end', () => {
    const ok = status === 200 && bytes >= 12;
    if (ok) {
      const rcode = rcodeName(flags & 0x0f);
      rcodes[rcode] = (rcodes[rcode] ?? 0) + 1;
    }
    finish(ok);
  });
  stream.on('error', () => finish(false));
  stream.end(body);
}

// Our own TLS socket, so that Nagle's delay can be turned off for small DNS messages (as the
// server does); the session's socket proxy does not allow it.
const sessions = Array.from({ length: SESSIONS }, () => connect(`https://127.0.0.1:${port}`, {
  createConnection: () => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'dns.test', ALPNProtocols: ['h2'] });
    socket.setNoDelay(true);
    return socket;
  },
}));
await Promise.all(sessions.map((s) => new Promise<void>((resolve, reject) => {
  s.once('connect', () => resolve());
  s.once('error', reject);
})));
await new Promise<void>((resolve) => {
  let left = SESSIONS;
  const done = (): void => {
    if (--left === 0) resolve();
  };
  // Each session finishes when its own streams are done and the time is up.
  sessions.forEach((s, i) => {
    const share = Math.floor(outstanding / SESSIONS) + (i < outstanding % SESSIONS ? 1 : 0);
    let open = share;
    const sessionDone = (): void => {
      if (--open === 0) done();
    };
    for (let k = 0; k < share; k++) send(s, sessionDone);
  });
});
const elapsed = (performance.now() - started) / 1000;
for (const s of sessions) s.close();
// Its own CPU time as well: near `elapsed`, the client (one Node thread) was the limit, not the server.
const cpu = process.cpuUsage(cpuAtStart);
console.log(JSON.stringify({ sent, completed, lost, rcodes, qps: completed / Math.max(seconds, elapsed), clientCpuS: (cpu.user + cpu.system) / 1e6, elapsedS: elapsed }));
