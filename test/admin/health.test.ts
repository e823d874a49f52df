// /healthz answers within about a second whatever the upstreams do, and counts an upstream
// that refuses the probe but answers its own zones as alive.
import t from 'tap';
import { T } from '../helpers/dns.js';
import { freePort, startSinkhole } from '../helpers/server.js';
import { startUpstream, type Handler } from '../helpers/upstream.js';

async function setup(t: { teardown(fn: () => unknown): void }, handler: Handler) {
  const upstream = await startUpstream(handler);
  const port = await freePort();
  const s = await startSinkhole({ upstream: upstream.address, lists: { 'm.txt': 'messenger.hotmail.com\n' }, args: ['--admin', `127.0.0.1:${port}`] });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  return (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
}

t.test('a dead upstream: 503 within about a second, not after the 4 s forward budget', async (t) => {
  const http = await setup(t, () => ({ drop: true }));
  const started = Date.now();
  const r = await http('/healthz');
  const ms = Date.now() - started;
  t.equal(r.status, 503);
  t.match(await r.json(), { reason: /no upstream answered: no answer within 1000 ms/ });
  t.ok(ms < 1600, `answered in ${ms} ms`);
});

t.test('an authoritative-only upstream that refuses the root probe is alive', async (t) => {
  const http = await setup(t, (q) => (q.name === '' ? { rcode: 5 } : { answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.3' }] }));
  const r = await http('/healthz');
  t.equal(r.status, 200, 'it answered the probe, if only with REFUSED');
});
