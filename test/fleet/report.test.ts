// `sinkhole report --fleet` (the fleet's hourly counts in Redis, in the shapes of `sinkhole
// report`) adds up exactly the blocked queries sent to each node; GET /api/fleet and the
// console of any node show every node, a silent one as DOWN.
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import type { FleetView } from '../../src/fleet/view.js';
import type { Report } from '../../src/observe/history/report.js';
import { needRedis, sleep, startNode, startRedis, tempDir, within } from './helpers.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const CHROMIUM = '/usr/bin/chromium';

function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

t.test('report --fleet adds up exactly the blocked queries of every node; /api/fleet and the console show each node', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const dir = tempDir('p');
  writeFileSync(join(dir, 'whatsapp.txt'), 'whatsapp.net\n');
  writeFileSync(join(dir, 'telegram.txt'), 'telegram.org\n');
  const adminPort = await freePort();
  const nodes = [
    await startNode({ upstream: upstream.address, redis: redis.url, name: 'north-1', site: 'north', role: 'primary', dir, stateDir: tempDir('s1') }),
    await startNode({ upstream: upstream.address, redis: redis.url, name: 'north-2', site: 'north', role: 'replica', dir: tempDir('o'), stateDir: tempDir('s2'),
      args: ['--admin', `127.0.0.1:${adminPort}`] }),
    await startNode({ upstream: upstream.address, redis: redis.url, name: 'south-1', site: 'south', role: 'replica', dir: tempDir('o'), stateDir: tempDir('s3') }),
  ];
  const closed = new Set<number>();
  t.teardown(() => Promise.all(nodes.map((n, i) => (closed.has(i) ? undefined : n.close()))));

  // Node i, client 127.0.0.(i+2): wa[i] whatsapp and tg[i] telegram queries (blocked), 3 forwarded.
  const wa = [3, 0, 5];
  const tg = [1, 2, 0];
  for (const [i, n] of nodes.entries()) {
    const from = `127.0.0.${i + 2}`;
    for (let k = 0; k < 3; k++) await ask(n.port, `name${k}.example.com`, T.A, { from });
    for (let k = 0; k < wa[i]!; k++) await ask(n.port, 'web.whatsapp.net', T.A, { from });
    for (let k = 0; k < tg[i]!; k++) await ask(n.port, 'telegram.org', T.AAAA, { from });
  }
  const report = async (...args: string[]): Promise<Report> => {
    const r = await cli(['report', '--fleet', '--format', 'json', '--redis', redis.url, ...args]);
    if (r.status !== 0) throw new Error(`report --fleet exited ${r.status}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Report;
  };
  const counts = (r: Report): Record<string, number> => Object.fromEntries(r.rows.map((row) => [row.key, row.count]));
  const complete = await within(6000, async () => {
    const c = counts(await report('--by', 'node'));
    return c['north-1'] === 4 && c['north-2'] === 2 && c['south-1'] === 5;
  }, 200);
  t.ok(complete >= 0, `the fleet report is complete after ${Math.round(complete)} ms (flush every 1 s here, 5 s by default)`);

  const byNode = await report('--by', 'node');
  t.same(Object.keys(byNode).sort(), ['by', 'rows', 'since', 'until'], 'the shape of sinkhole report --format json');
  t.same(Object.keys(byNode.rows[0]!).sort(), ['count', 'first', 'key', 'last', 'name'], 'rows: key, name, count, first, last');
  t.same(counts(byNode), { 'north-1': 4, 'north-2': 2, 'south-1': 5 }, 'by node: exactly the blocked queries sent to each');
  t.same(counts(await report('--by', 'site')), { north: 6, south: 5 }, 'by site');
  t.same(counts(await report('--by', 'client')), { 'north/127.0.0.2': 4, 'north/127.0.0.3': 2, 'south/127.0.0.4': 5 }, 'by client (site/address)');
  t.same(counts(await report('--by', 'bundle')), { whatsapp: 8, telegram: 3 }, 'by bundle, over the sites');
  t.same(counts(await report('--by', 'site', '--bundle', 'whatsapp')), { north: 3, south: 5 }, 'one bundle, by site');
  const hours = await report('--by', 'hour', '--since', '2h');
  t.equal(hours.rows.reduce((a, r) => a + r.count, 0), 11, 'by hour: all 11 blocked queries');
  t.equal((await report('--by', 'day', '--client', '127.0.0.4')).rows.reduce((a, r) => a + r.count, 0), 5, 'one client over the days: 5');
  const row = byNode.rows[0]!;
  t.ok(Date.parse(row.first) <= Date.now() && Date.parse(row.last) <= Date.now() + 1000 && Date.parse(row.first) < Date.parse(row.last), 'first and last are hour bounds within the range');

  const table = await cli(['report', '--fleet', '--by', 'site', '--redis', redis.url]);
  t.equal(table.status, 0, 'the table format');
  t.match(table.stdout, /^fleet: blocked attempts by site/);
  t.match(table.stdout, /north\s+6\s/);
  const csv = await cli(['report', '--fleet', '--by', 'bundle', '--format', 'csv', '--redis', redis.url]);
  t.match(csv.stdout, /^key,name,count,first,last\nwhatsapp,,8,/, 'csv');
  const refused = await cli(['report', '--fleet', '--by', 'domain', '--redis', redis.url]);
  t.equal(refused.status, 2, '--by domain is refused (not in the fleet counts)');
  t.match(refused.stderr, /--by domain is not in the fleet's hourly counts.*on each node/);

  // South-1 stops: every node's console shows it DOWN.
  await nodes[2]!.close();
  closed.add(2);
  await sleep(1800);
  const view = (await (await fetch(`http://127.0.0.1:${adminPort}/api/fleet`)).json()) as FleetView;
  t.same(view.nodes.map((n) => [n.node, n.up]), [['north-1', true], ['north-2', true], ['south-1', false]], 'GET /api/fleet on a replica: south-1 is down');
  t.same(view.perNode['south-1'], { queries: 8, blocked: 5 }, 'and its counts stay in the fleet figures');

  if (!existsSync(CHROMIUM)) {
    t.notOk(process.env.CI === 'true', 'Chromium is installed in CI (.ci/run installs it)');
    t.comment('skipped the console check: /usr/bin/chromium is not installed');
    return;
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${adminPort}/`);
  await page.waitForSelector('body[data-fleet]', { timeout: 10000 });
  t.equal(await page.getAttribute('body', 'data-fleet'), 'north-1:up,north-2:up,south-1:down', 'the console lists each node, south-1 down');
  t.match(await page.textContent('#fleet'), /DOWN\s*south\/south-1\s*replica/, 'shown as DOWN in the fleet table');
  t.match(await page.textContent('#fleetsum'), /3 nodes, 2 up, 1 down/);
  t.match(await page.textContent('#fleetsites'), /site north\s*\d+\s*6/, 'the sites\' counts');
});
