// The console in a real browser (Debian's Chromium, driven by playwright-core), with a token:
// the page asks for it, the history chart switches between 24 h and 7 d (from the history
// database), the client page lists what one client tried, and an action (block a name)
// writes local.txt and is in force; a pause made on the page and one made through the API
// are listed (group, the bundles that stop blocking, until when) and each resume button
// ends its pause, which DNS answers follow. Screenshots go to .tap/screenshots/console-*.png
// (test/screenshots/console-*.png, which the README shows, are copies of them).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, serverWithUpstream } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'browser-test-token';

t.test('the console: history ranges, a client page, an action', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.notOk(process.env.CI === 'true', 'Chromium is installed in CI (.ci/run installs it)');
    t.comment('skipped: /usr/bin/chromium is not installed (apt-get install chromium)');
    return;
  }
  const { chromium } = await import('playwright-core');
  const adminPort = await freePort();
  // A group of one client: the pause section shows the group and the bundle it stops.
  const confDir = mkdtempSync(join(tmpdir(), 'sinkhole-console-'));
  t.teardown(() => rmSync(confDir, { recursive: true, force: true }));
  writeFileSync(join(confDir, 'sinkhole.conf'), 'group guests 127.0.0.3\nblock guests yahoo-messenger\n');
  const { s } = await serverWithUpstream(t, {
    handler: (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }),
    lists: { 'msn-messenger.txt': 'messenger.hotmail.com\n', 'yahoo-messenger.txt': 'msg.yahoo.com\n' },
    args: ['--config', join(confDir, 'sinkhole.conf'), '--admin', `127.0.0.1:${adminPort}`, '--admin-token', TOKEN, '--history', 'blocked'],
  });
  // More than a second apart: identical attempts within one second are stored as one row
  // (×N, docs/history.md), and the client page and paging below want three single rows.
  for (let i = 0; i < 3; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1050));
    await ask(s.port, 'gateway.messenger.hotmail.com', T.A, { from: '127.0.0.2' });
  }
  await ask(s.port, 'scs.msg.yahoo.com', T.A, { from: '127.0.0.2' });
  await ask(s.port, 'scs.msg.yahoo.com', T.A);
  await ask(s.port, 'www.example.org', T.A);
  // The history writes in batches about every second: wait until the report has all 5.
  const base = `http://127.0.0.1:${adminPort}`;
  const headers = { authorization: `Bearer ${TOKEN}` };
  for (let i = 0; ; i++) {
    const r = await fetch(`${base}/api/report?by=client&since=1d`, { headers });
    const body = (await r.json()) as { rows?: { count: number }[] };
    if ((body.rows ?? []).reduce((n, row) => n + row.count, 0) === 5) break;
    if (i > 50) throw new Error('the history did not get the 5 attempts within 10 s');
    await new Promise((r) => setTimeout(r, 200));
  }

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 }, timezoneId: 'Europe/Berlin', locale: 'en-GB' });
  const external: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(`${base}/`)) external.push(r.url());
  });
  let asked = 0;
  page.on('dialog', (d) => {
    asked++;
    void d.accept(TOKEN);
  });
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-loaded="yes"][data-history="24h"]', { timeout: 10000 });
  t.equal(asked, 1, 'the page asked for the token once');
  t.equal(await page.evaluate('sessionStorage.sinkholeToken'), TOKEN, 'and keeps it in sessionStorage');
  const counts = async () => page.$$eval('#history rect[data-count]', (rects) => rects.map((r) => Number(r.getAttribute('data-count'))));
  let bars = await counts();
  t.equal(bars.length, 24, '24 h: a bar per hour');
  t.equal(bars.reduce((a, b) => a + b, 0), 5, 'every blocked attempt from the history');
  t.match(await page.textContent('#history'), /blocked attempts.*hour \(Europe\/Berlin\)/s, 'labelled axes, in local time');
  t.match(await page.textContent('#recent'), /time \(Europe\/Berlin\).*rule.*\d{1,2} \w{3} \d{4}.*msg\.yahoo\.com/s, 'attempt times with date and zone; the rule column');
  t.notMatch(await page.textContent('#domains'), /^msg\.yahoo\.com/m, 'top names are the names asked');
  t.match(await page.textContent('#domains'), /scs\.msg\.yahoo\.com/);
  const shots = join(import.meta.dirname, '..', '..', '.tap', 'screenshots');
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, 'console-overview.png'), fullPage: true });

  await page.click('button[data-range="7d"]');
  await page.waitForSelector('body[data-history="7d"]');
  bars = await counts();
  t.equal(bars.length, 7, '7 d: a bar per day');
  t.equal(bars.at(-1), 5, 'today holds the 5 attempts');
  t.match(await page.textContent('#history'), /day \(Europe\/Berlin\)/);

  await page.click('#clients a');
  await page.waitForSelector('body[data-detail="client:127.0.0.2"]');
  t.match(await page.textContent('#detailtitle'), /Client 127\.0\.0\.2/, 'the client page');
  t.match(await page.textContent('#detailinfo'), /group: default/, 'with its group');
  t.match(await page.textContent('#detailnames'), /gateway\.messenger\.hotmail\.com\s*3.*scs\.msg\.yahoo\.com\s*1/s, 'every name it tried, with counts');
  t.match(await page.textContent('#detailother'), /msn-messenger\s*3.*yahoo-messenger\s*1/s, 'and the bundles');
  await page.waitForSelector('#detailattempts tr:nth-child(5)');
  const latest = await page.$$eval('#detailattempts tr', (trs) => trs.slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  t.equal(latest.length, 4, 'the client page lists its single attempts');
  t.match(latest[0], [/\d{1,2} \w{3} \d{4}/, '127.0.0.2', 'default', 'scs.msg.yahoo.com A', 'yahoo-messenger', 'yahoo-messenger.txt:1', /./], 'newest first: time, client, group, name, bundle, rule, node');
  t.match(latest[3], [/./, '127.0.0.2', 'default', 'gateway.messenger.hotmail.com A', 'msn-messenger', 'msn-messenger.txt:1']);
  await page.locator('#detail').screenshot({ path: join(shots, 'console-client.png') });

  await page.evaluate('location.hash = "#bundle=msn-messenger"');
  await page.waitForSelector('body[data-detail="bundle:msn-messenger"]');
  t.match(await page.textContent('#detailother'), /127\.0\.0\.2\s*3/, 'the bundle page: who tried it');

  await page.fill('#searchform input[name="name"]', 'yahoo');
  await page.fill('#searchform input[name="client"]', '127.0.0.2');
  await page.click('#searchform button');
  await page.waitForSelector('body[data-search*="name=yahoo"]');
  const found = await page.textContent('#results');
  t.match(found, /127\.0\.0\.2.*scs\.msg\.yahoo\.com A.*yahoo-messenger.*yahoo-messenger\.txt:1/s, 'search by client and name: the single attempt, with its rule');
  t.notMatch(found, /hotmail/);
  t.equal(await page.$$eval('#results tr', (trs) => trs.length), 2, 'one attempt (and the head)');
  // Pages: two attempts a page, "older attempts" for the rest.
  await page.fill('#searchform input[name="name"]', '');
  await page.$eval('#searchform input[name="limit"]', (i) => i.setAttribute('value', '2'));
  await page.click('#searchform button');
  await page.waitForSelector('body[data-search$="&shown=2"]');
  t.ok(await page.isVisible('#searchmore'), 'more than a page: the "older attempts" button');
  await page.click('#searchmore');
  await page.waitForSelector('body[data-search$="&shown=4"]');
  t.notOk(await page.isVisible('#searchmore'), 'all four shown, no more pages');
  const names = await page.$$eval('#results tr td:nth-child(4)', (tds) => tds.map((td) => td.textContent));
  t.same(names, ['scs.msg.yahoo.com A', 'gateway.messenger.hotmail.com A', 'gateway.messenger.hotmail.com A', 'gateway.messenger.hotmail.com A'], 'newest first, each once');
  await page.locator('#search').screenshot({ path: join(shots, 'console-search.png') });

  await page.fill('form[data-action="block"] input[name="name"]', 'chat.example.org');
  await page.click('form[data-action="block"] button:not([data-alt])');
  await page.waitForSelector('body[data-action="block:200"]');
  t.match(readFileSync(join(s.dir, 'local.txt'), 'utf8'), /^chat\.example\.org$/m, 'the action wrote local.txt');
  const check = await fetch(`${base}/api/check?name=chat.example.org`, { headers });
  t.match(await check.json(), { verdict: 'blocked' }, 'and the name is blocked');
  await page.fill('form[data-action="check"] input[name="name"]', 'chat.example.org');
  await page.click('form[data-action="check"] button');
  await page.waitForSelector('body[data-action="check:200"]');
  t.match(await page.textContent('#actionout'), /"verdict": "blocked"/, 'check from the page');
  await page.locator('#actions').screenshot({ path: join(shots, 'console-actions.png') });

  // Pauses: one from the page's form (guests, 15 minutes), one through the API as
  // `sinkhole pause` makes it (everyone, until resumed); each listed with its resume button.
  const answer = async (from: string) => ((await ask(s.port, 'scs.msg.yahoo.com', T.A, { from })).answers[0]?.text === '127.0.0.1' ? 'blocked' : 'allowed');
  t.match(await page.textContent('#pauses'), /blocking is on for every group/);
  t.equal(await answer('127.0.0.3'), 'blocked', 'guests: yahoo-messenger blocks');
  await page.fill('form[data-action="pause"] input[name="group"]', 'guests');
  await page.fill('form[data-action="pause"] input[name="minutes"]', '15');
  await page.click('form[data-action="pause"] button:not([data-alt])');
  await page.waitForSelector('body[data-pauses="1"]');
  const guests = await page.textContent('#pauses tr:nth-child(2)');
  t.match(guests, /^guests\s*yahoo-messenger\s*\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d\s*1[45] min \d+ s\s*resume$/, 'the group, the bundle it stops, until when (local time), time left');
  t.equal(await answer('127.0.0.3'), 'allowed', 'guests paused');
  t.equal(await answer('127.0.0.2'), 'blocked', 'the default group is not');
  const r = await fetch(`${base}/api/pause`, { method: 'POST', headers });
  t.match(await r.json(), { paused: 'all', until: null });
  // The page polls every 5 s.
  await page.waitForSelector('body[data-pauses="2"]', { timeout: 12000 });
  t.match(await page.textContent('#pauses'), /every group\s*local, msn-messenger, yahoo-messenger\s*until resumed\s*–\s*resume all/, 'a pause for everyone, with no end');
  await page.locator('#pausebox').screenshot({ path: join(shots, 'console-pauses.png') });
  await page.click('#pauses button[data-resume="guests"]');
  await page.waitForSelector('body[data-pauses="1"]');
  t.match(await page.textContent('#pauses'), /every group/);
  t.notMatch(await page.textContent('#pauses'), /guests/, 'the guests pause ended');
  t.equal(await answer('127.0.0.3'), 'allowed', 'still paused for everyone');
  await page.click('#pauses button[data-resume="all"]');
  await page.waitForSelector('body[data-pauses="0"]');
  t.equal(await page.getAttribute('body', 'data-action'), 'resume:200', 'resumed with the token');
  t.match(await page.textContent('#pauses'), /blocking is on for every group/);
  t.equal(await answer('127.0.0.3'), 'blocked', 'blocking is back');
  t.equal(await answer('127.0.0.2'), 'blocked');
  t.same(external, [], 'every asset comes from the server (works offline)');

  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as number;
  t.ok(overflow <= 1, `readable on a phone: no sideways scrolling at 390 px (${overflow})`);
});
