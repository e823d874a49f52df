// The dashboard in a real browser (Debian's Chromium, driven by playwright-core): a server
// that has answered blocked and allowed queries shows those numbers in its tiles, chart and
// tables. The screenshot goes to .tap/screenshots/dashboard.png, beside tap's other output
// (test/screenshots/dashboard.png, which the README shows, is a copy of one).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, serverWithUpstream } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';

t.test('the dashboard shows the numbers of the queries the server answered', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.notOk(process.env.CI === 'true', 'Chromium is installed in CI (.ci/run installs it)');
    t.comment('skipped: /usr/bin/chromium is not installed (apt-get install chromium)');
    return;
  }
  const { chromium } = await import('playwright-core');
  const adminPort = await freePort();
  const { s } = await serverWithUpstream(t, {
    handler: (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }),
    lists: { 'msn-messenger.txt': 'messenger.hotmail.com\n', 'yahoo-messenger.txt': 'msg.yahoo.com\n' },
    args: ['--admin', `127.0.0.1:${adminPort}`],
  });
  for (let i = 0; i < 3; i++) await ask(s.port, 'gateway.messenger.hotmail.com', T.A, { from: '127.0.0.2' });
  await ask(s.port, 'scs.msg.yahoo.com', T.A);
  await ask(s.port, 'www.example.org', T.A);
  await ask(s.port, 'www.example.org', T.A);

  // launch() starts Chromium with a new, empty profile of its own.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const external: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(`http://127.0.0.1:${adminPort}/`)) external.push(r.url());
  });
  await page.goto(`http://127.0.0.1:${adminPort}/`);
  await page.waitForSelector('body[data-loaded="yes"]', { timeout: 10000 });
  const text = async (sel: string) => (await page.textContent(sel))?.trim();
  t.equal(await text('#queries'), '6', 'total queries');
  t.equal(await text('#blocked'), '4', 'blocked');
  t.equal(await text('#share'), '66.7%', 'blocked share');
  t.equal(await text('#hitrate'), '50.0%', 'cache hit rate (one hit, one miss)');
  t.match(await text('#clients'), /127\.0\.0\.2\s*3/, 'top blocked client');
  t.match(await text('#bundles'), /msn-messenger\s*3.*yahoo-messenger\s*1/s, 'top bundles');
  t.match(await text('#recent'), /scs\.msg\.yahoo\.com A.*yahoo-messenger/, 'latest blocked attempts');
  const bars = await page.$$eval('#chart rect[data-blocked]', (rects) => rects.map((r) => Number(r.getAttribute('data-blocked'))));
  t.equal(bars.length, 24, 'a bar per hour for 24 hours');
  t.equal(bars.reduce((a, b) => a + b, 0), 4, 'the blocked attempts are in the chart');
  t.same(external, [], 'every asset comes from the server (works offline)');

  const dir = join(import.meta.dirname, '..', '..', '.tap', 'screenshots');
  mkdirSync(dir, { recursive: true });
  const shot = join(dir, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(existsSync(shot), `screenshot saved to ${shot}`);

  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as number;
  t.ok(overflow <= 1, 'readable on a phone: no sideways scrolling at 390 px');
});
