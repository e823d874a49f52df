// The admin API against a web page in the admin's browser and against slow or greedy
// clients: DNS rebinding (a foreign Host), cross-site POSTs (a foreign or null Origin),
// oversized bodies, and connections that send their headers slowly.
import { connect } from 'node:net';
import { request } from 'node:http';
import t from 'tap';
import { T } from '../helpers/dns.js';
import { freePort, startSinkhole } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

async function setup(t: { teardown(fn: () => unknown): void }) {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  const port = await freePort();
  const s = await startSinkhole({ upstream: upstream.address, lists: { 'm.txt': 'messenger.hotmail.com\n' }, args: ['--admin', `127.0.0.1:${port}`] });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  return { port };
}

/** A raw HTTP request, so that Host and Origin are exactly what the test says (fetch forbids setting them). */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

t.test('Host: only this server\'s own names (no DNS rebinding)', async (t) => {
  const { port } = await setup(t);
  t.equal((await raw(port, 'GET', '/api/stats', { host: `127.0.0.1:${port}` })).status, 200, 'its address');
  t.equal((await raw(port, 'GET', '/api/stats', { host: `localhost:${port}` })).status, 200, 'localhost');
  const rebound = await raw(port, 'GET', '/api/stats', { host: `attacker.example:${port}` });
  t.equal(rebound.status, 403, 'a rebound name is refused');
  t.match(JSON.parse(rebound.text), { error: /Host "attacker\.example:\d+" is not this server/ });
  t.equal((await raw(port, 'GET', '/metrics', { host: 'attacker.example' })).status, 403, 'without a port too');
  t.equal((await raw(port, 'POST', '/reload', { host: `evil.example:${port}` })).status, 403, 'and for actions');
  t.equal((await raw(port, 'GET', '/api/stats', { host: `127.0.0.1:${port + 1}` })).status, 403, 'another port is another server');
});

t.test('Origin: state-changing requests from another site are refused', async (t) => {
  const { port } = await setup(t);
  const host = `127.0.0.1:${port}`;
  const evil = await raw(port, 'POST', '/reload', { host, origin: 'http://evil.example', 'content-type': 'text/plain' }, 'x');
  t.equal(evil.status, 403, 'a cross-site POST');
  t.match(JSON.parse(evil.text), { error: /cross-site request from Origin "http:\/\/evil\.example" refused/ });
  t.equal((await raw(port, 'POST', '/reload', { host, origin: 'null' })).status, 403, 'Origin null (sandboxed frames, file: pages)');
  t.equal((await raw(port, 'POST', '/reload', { host, origin: `http://${host}` })).status, 200, 'the dashboard\'s own origin');
  t.equal((await raw(port, 'POST', '/reload', { host })).status, 200, 'no Origin (curl, scripts)');
});

t.test('request limits: bodies, slow headers, connections', async (t) => {
  const { port } = await setup(t);
  const host = `127.0.0.1:${port}`;
  const big = await raw(port, 'POST', '/reload', { host, 'content-type': 'application/json' }, 'x'.repeat(200 * 1024)).catch(() => ({ status: 413, text: '' }));
  t.equal(big.status, 413, 'a 200 KB body is refused');
  // A client that sends its headers one byte at a time is cut off within the header timeout.
  const started = Date.now();
  const closedAfter = await new Promise<number>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /api/stats HTTP/1.1\r\n'));
    const drip = setInterval(() => socket.writable && socket.write('X'), 500);
    socket.on('close', () => {
      clearInterval(drip);
      resolve(Date.now() - started);
    });
    socket.on('error', () => undefined);
  });
  t.ok(closedAfter < 8000, `a slow-header connection closed after ${closedAfter} ms (limit 5 s, checked every second)`);
});
