// GET /api/attempts through the real admin HTTP server of a running sinkhole: single blocked
// attempts from the history database (real DNS queries from two client addresses), newest
// first, filtered by client, name, bundle and time, paged with next/before; 401 without
// the token, 403 with a foreign Host, 400 for a bad parameter.
import { request } from 'node:http';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, serverWithUpstream } from '../helpers/server.js';

const TOKEN = 'attempts-test-token';

interface Page {
  rows: { time: string; client: string; name: string | null; group: string; qname: string; qtype: string; bundle: string | null; rule: string | null; node: string }[];
  next: string | null;
  error?: string;
}

function get(port: number, path: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<{ status: number; body: Page }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers }, setHost: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Page }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('GET /api/attempts: single attempts, filtered and paged, behind the token', async (t) => {
  const adminPort = await freePort();
  const { s } = await serverWithUpstream(t, {
    handler: (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }),
    lists: { 'msn-messenger.txt': 'messenger.hotmail.com\n', 'yahoo-messenger.txt': '# Yahoo Messenger\nlogin.yahoo.example\nmsg.yahoo.com\n' },
    args: ['--admin', `127.0.0.1:${adminPort}`, '--admin-token', TOKEN, '--history', 'blocked'],
  });
  const started = Date.now();
  for (let i = 0; i < 5; i++) await ask(s.port, `n${i}.messenger.hotmail.com`, T.A, { from: '127.0.0.2' });
  await ask(s.port, 'scs.msg.yahoo.com', T.AAAA, { from: '127.0.0.2' });
  await ask(s.port, 'scs.msg.yahoo.com', T.A, { from: '127.0.0.3' });
  await ask(s.port, 'www.example.org', T.A, { from: '127.0.0.3' });
  // Written in batches about every second: wait (bounded) until all 7 are stored.
  let all: Page | undefined;
  for (let i = 0; ; i++) {
    const r = await get(adminPort, '/api/attempts?since=1h');
    if (r.status === 200 && r.body.rows.length === 7) {
      all = r.body;
      break;
    }
    if (i > 75) throw new Error(`the 7 attempts were not stored within 15 s (last: ${r.status} ${JSON.stringify(r.body).slice(0, 200)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
  t.same(all.rows.map((r) => `${r.client} ${r.qname} ${r.qtype}`), [
    '127.0.0.3 scs.msg.yahoo.com A', '127.0.0.2 scs.msg.yahoo.com AAAA',
    ...[4, 3, 2, 1, 0].map((i) => `127.0.0.2 n${i}.messenger.hotmail.com A`),
  ], 'blocked attempts only, newest first');
  // The rule's file and line as the policy knows them (QueryEvent.ruleSource: no text built).
  t.match(all.rows[0], { group: 'default', name: null, bundle: 'yahoo-messenger', rule: /yahoo-messenger\.txt:3$/, node: /./ });
  const at = Date.parse(all.rows[0]!.time);
  t.ok(at >= started - 1000 && at <= Date.now(), 'the time is when it was asked');
  t.equal(all.next, null);

  const names = async (query: string): Promise<string[]> => {
    const r = await get(adminPort, `/api/attempts?${query}`);
    t.equal(r.status, 200, query);
    return r.body.rows.map((row) => `${row.client} ${row.qname}`);
  };
  t.same(await names('client=127.0.0.3'), ['127.0.0.3 scs.msg.yahoo.com'], 'by client');
  t.same(await names('name=YAHOO'), ['127.0.0.3 scs.msg.yahoo.com', '127.0.0.2 scs.msg.yahoo.com'], 'by part of the name');
  t.same(await names('bundle=yahoo-messenger&client=127.0.0.2'), ['127.0.0.2 scs.msg.yahoo.com'], 'by bundle and client');
  t.same(await names(`until=${encodeURIComponent(new Date(started - 60_000).toISOString())}&since=1d`), [], 'by time: nothing before the test began');

  // Pages of two: next/before walk back through all seven.
  const seen: string[] = [];
  let next: string | null = null;
  let pages = 0;
  do {
    const r = await get(adminPort, `/api/attempts?since=1h&limit=2${next === null ? '' : `&before=${next}`}`);
    t.equal(r.status, 200);
    seen.push(...r.body.rows.map((row) => `${row.client} ${row.qname} ${row.qtype}`));
    next = r.body.next;
    pages++;
  } while (next !== null && pages < 10);
  t.equal(pages, 4, 'four pages of at most two');
  t.same(seen, all.rows.map((r) => `${r.client} ${r.qname} ${r.qtype}`), 'the same seven, in the same order, once each');

  t.equal((await get(adminPort, '/api/attempts', {})).status, 401, 'no token: 401');
  t.equal((await get(adminPort, '/api/attempts', { authorization: 'Bearer wrong' })).status, 401, 'a wrong token: 401');
  t.equal((await get(adminPort, '/api/attempts', { authorization: `Bearer ${TOKEN}`, host: 'evil.example:80' })).status, 403, 'a foreign Host: 403');
  const bad = await get(adminPort, '/api/attempts?limit=100000');
  t.equal(bad.status, 400);
  t.match(bad.body.error, /^limit: "100000" is not a number from 1 to 500$/, 'a bad parameter: 400 with a one-line error');
});
