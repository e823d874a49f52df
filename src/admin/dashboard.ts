// The console served at / by the admin API: one self-contained HTML page (no CDN, no
// framework). Live figures from /api/stats every 5 seconds; history (24 h to 90 d) and the
// client and bundle pages from /api/report; in a fleet, every node from /api/fleet; single attempts (the search, the latest of a
// client or bundle) from /api/attempts; actions (block, allow, bundles, pause, check)
// through the POST endpoints; the pauses running (GET /api/pause: which group, which
// bundles stop blocking, until when) each with a resume button. It holds no data itself, so it is served
// without a token; when the API asks for one, the page asks the admin for it and keeps it
// in sessionStorage (gone when the tab closes).
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sinkhole</title>
<style>
  :root { --fg: #1b1f24; --muted: #5b6570; --line: #d8dee4; --blocked: #c2410c; --ok: #2563eb; --bg: #f6f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 12px 16px; background: #fff; border-bottom: 1px solid var(--line); display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  #status { color: var(--muted); font-size: 13px; }
  main { padding: 12px; display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; min-width: 0; overflow-x: auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 14px; margin: 0 0 8px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); gap: 8px; }
  .tile b { display: block; font-size: 24px; }
  .tile span { color: var(--muted); font-size: 13px; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  td, th { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  svg { width: 100%; height: 160px; display: block; }
  .legend { font-size: 12px; color: var(--muted); }
  .legend i { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; vertical-align: middle; }
  td.nowrap, td.up { white-space: nowrap; overflow-wrap: normal; }
  nav a, button.range { margin-right: 6px; }
  button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
  button.on { background: var(--fg); color: #fff; }
  form { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: 4px 0 8px; }
  input { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px; width: 11em; max-width: 100%; }
  #history, #chart { height: auto; aspect-ratio: 960 / 220; }
  #history text, #chart text { font-size: 11px; fill: var(--muted); }
  .out { font: 12px/1.3 ui-monospace, monospace; white-space: pre-wrap; color: var(--muted); }
  a { color: var(--ok); }
</style>
</head>
<body>
<header><h1>sinkhole</h1><nav><a href="#">overview</a><a href="#search">search</a><a href="#actions">actions</a></nav><span id="status">loading…</span></header>
<main>
  <section class="wide"><h2>Totals</h2><div class="tiles">
    <div class="tile"><b id="queries">–</b><span>queries</span></div>
    <div class="tile"><b id="blocked">–</b><span>blocked</span></div>
    <div class="tile"><b id="share">–</b><span>blocked share</span></div>
    <div class="tile"><b id="hitrate">–</b><span>cache hit rate</span></div>
    <div class="tile"><b id="rules">–</b><span>rules</span></div>
  </div></section>
  <section class="wide" id="pausebox"><h2>Paused blocking</h2><table id="pauses"></table><table id="lists" hidden></table></section>
  <section class="wide" id="fleetbox" hidden><h2>Fleet <span id="fleetsum"></span></h2><table id="fleet"></table><table id="fleetsites"></table></section>
  <section class="wide" id="historybox"><h2>History of blocked attempts <span id="rangelabel"></span></h2>
    <div><button class="range" data-range="24h">24 h</button><button class="range" data-range="7d">7 d</button><button class="range" data-range="30d">30 d</button><button class="range" data-range="90d">90 d</button></div>
    <svg id="history" viewBox="0 0 960 220" role="img" aria-label="blocked attempts over time"></svg>
    <div class="legend" id="historynote">from the history database (survives restarts); times are local</div>
  </section>
  <section class="wide" id="detail" hidden><h2 id="detailtitle"></h2><div id="detailinfo"></div>
    <table id="detailnames"></table><table id="detailother"></table><h2 style="margin-top:12px">Latest attempts</h2><table id="detailattempts"></table></section>
  <section class="wide" id="search"><h2>Search blocked attempts</h2>
    <form id="searchform"><input name="client" placeholder="client (IP or name)"><input name="name" placeholder="name contains"><input name="bundle" placeholder="bundle">
      <input name="since" placeholder="since (7d, 2026-11-01)" value="7d"><input name="until" placeholder="until (optional)"><input name="limit" type="hidden" value="50"><button>search</button></form>
    <table id="results"></table><button id="searchmore" hidden>older attempts</button></section>
  <section class="wide"><h2>Last 24 hours (live, since the server started)</h2>
    <svg id="chart" viewBox="0 0 960 220" role="img" aria-label="queries and blocked attempts per hour"></svg>
    <div class="legend"><i style="background:var(--ok)"></i>queries<i style="background:var(--blocked)"></i>blocked</div>
  </section>
  <section><h2>Top blocked clients</h2><table id="clients"></table></section>
  <section><h2>Top blocked bundles</h2><table id="bundles"></table></section>
  <section><h2>Top blocked names asked</h2><table id="domains"></table></section>
  <section><h2>Upstreams</h2><table id="upstreams"></table></section>
  <section><h2>DNS over HTTPS</h2><div id="canary" class="legend"></div><table id="doh"></table></section>
  <section class="wide"><h2>Latest blocked attempts</h2><table id="recent"></table></section>
  <section class="wide" id="actions"><h2>Actions (need the admin token)</h2>
    <form data-action="bundles/enable"><input name="bundle" placeholder="bundle"><button>enable bundle</button><button data-alt="bundles/disable">disable bundle</button></form>
    <form data-action="block"><input name="name" placeholder="name, e.g. icq.com"><button>block name</button><button data-alt="allow">allow name</button></form>
    <form data-action="pause"><input name="group" placeholder="group (empty: all)"><input name="minutes" placeholder="minutes" value="15"><button>pause blocking</button><button data-alt="resume">resume</button></form>
    <form data-action="check" data-method="GET"><input name="name" placeholder="name"><input name="client" placeholder="client IP (optional)"><button>check</button></form>
    <div id="actionout" class="out"></div>
    <table id="bundlelist"></table>
  </section>
</main>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const pct = (x) => (x * 100).toFixed(1) + '%';
// Local time with the date, and the zone, so that no one reads UTC for local time.
const zone = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone; } catch { return 'local time'; } })();
const when = (iso) => { const d = new Date(iso); return isNaN(d) ? String(iso) : d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }); };
const token = () => sessionStorage.sinkholeToken || '';
async function api(path, init) {
  init = init || {};
  const headers = Object.assign({}, init.headers || {}, token() ? { authorization: 'Bearer ' + token() } : {});
  const res = await fetch(path, Object.assign({}, init, { headers }));
  if (res.status === 401) {
    const t = prompt('Admin token (kept in this tab only)');
    if (t) { sessionStorage.sinkholeToken = t; return api(path, init); }
    throw new Error('a token is needed');
  }
  return { status: res.status, body: await res.json() };
}
function rows(table, list, cells, head) {
  const th = head ? '<tr>' + head.map((h) => '<th>' + esc(h) + '</th>').join('') + '</tr>' : '';
  $(table).innerHTML = th + (list.length ? list.map((r) => '<tr>' + cells(r).map((c, i) => {
    if (c && typeof c === 'object') return '<td' + (c.cls ? ' class="' + c.cls + '"' : '') + '>' + (c.html !== undefined ? c.html : esc(c.text)) + '</td>';
    return '<td' + (i && typeof c === 'number' ? ' class="n"' : '') + '>' + esc(c) + '</td>';
  }).join('') + '</tr>').join('') : '<tr><td>none yet</td></tr>');
}
const clientLink = (c, name) => ({ html: '<a href="#client=' + encodeURIComponent(c) + '">' + esc(c) + (name ? ' (' + esc(name) + ')' : '') + '</a>' });
const bundleLink = (b) => (b ? { html: '<a href="#bundle=' + encodeURIComponent(b) + '">' + esc(b) + '</a>' } : '');
// A bar chart with labelled axes: buckets [{ label, n, q }] (q: queries behind the bar, optional).
function bars(svg, buckets, yLabel, xLabel) {
  const max = Math.max(1, ...buckets.map((b) => Math.max(b.n, b.q || 0)));
  const top = Math.ceil(max / 4) * 4 || 4;
  const L = 50, W = 900, H = 170, T = 10;
  let out = '';
  for (let g = 0; g <= 4; g++) {
    const y = T + H - (g / 4) * H;
    out += '<line x1="' + L + '" x2="' + (L + W) + '" y1="' + y + '" y2="' + y + '" stroke="#d8dee4"/><text x="' + (L - 6) + '" y="' + (y + 4) + '" text-anchor="end">' + (top * g / 4) + '</text>';
  }
  const w = W / buckets.length;
  const every = Math.ceil(buckets.length / 8);
  buckets.forEach((b, i) => {
    const x = L + i * w + 1, bw = Math.max(1, w - 2);
    if (b.q !== undefined) { const hq = (b.q / top) * H; out += '<rect x="' + x + '" y="' + (T + H - hq) + '" width="' + bw + '" height="' + hq + '" fill="var(--ok)" opacity=".35"><title>' + esc(b.label) + ': ' + b.q + ' queries</title></rect>'; }
    const h = (b.n / top) * H;
    out += '<rect x="' + x + '" y="' + (T + H - h) + '" width="' + bw + '" height="' + h + '" fill="var(--blocked)" data-' + (b.q !== undefined ? 'blocked' : 'count') + '="' + b.n + '"><title>' + esc(b.label) + ': ' + b.n + ' blocked</title></rect>';
    if (i % every === 0) out += '<text x="' + (L + i * w + w / 2) + '" y="' + (T + H + 16) + '" text-anchor="middle">' + esc(b.label) + '</text>';
  });
  out += '<text x="12" y="' + (T + H / 2) + '" transform="rotate(-90 12 ' + (T + H / 2) + ')" text-anchor="middle">' + esc(yLabel) + '</text>';
  out += '<text x="' + (L + W / 2) + '" y="216" text-anchor="middle">' + esc(xLabel) + ' (' + esc(zone) + ')</text>';
  $(svg).innerHTML = out;
}
const hourLabel = (d) => d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
function chart(hours) {
  bars('chart', hours.map((h) => ({ label: hourLabel(new Date(h.hour)), n: h.blocked, q: h.queries })), 'queries', 'hour');
}
// History: buckets filled in the browser (the report lists only the hours or days with attempts).
const RANGES = { '24h': { by: 'hour', n: 24, ms: 3600000 }, '7d': { by: 'day', n: 7, ms: 86400000 }, '30d': { by: 'day', n: 30, ms: 86400000 }, '90d': { by: 'day', n: 90, ms: 86400000 } };
const dayKey = (d) => d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0');
let range = '24h';
async function history() {
  const r = RANGES[range];
  document.querySelectorAll('button.range').forEach((b) => b.classList.toggle('on', b.dataset.range === range));
  const res = await api('api/report?by=' + r.by + '&since=' + range);
  if (res.status !== 200) { $('history').innerHTML = '<text x="60" y="110">' + esc(res.body.error || 'no history') + '</text>'; document.body.dataset.history = range; return; }
  const counts = new Map();
  for (const row of res.body.rows) {
    const k = r.by === 'hour' ? Math.floor(Date.parse(row.key) / 3600000) : row.key;
    counts.set(k, (counts.get(k) || 0) + row.count);
  }
  const now = new Date();
  const buckets = [];
  for (let i = r.n - 1; i >= 0; i--) {
    if (r.by === 'hour') { const h = Math.floor(now.getTime() / 3600000) - i; const d = new Date(h * 3600000); buckets.push({ d, n: counts.get(h) || 0, label: hourLabel(d) }); }
    else { const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - i); buckets.push({ d, n: counts.get(dayKey(d)) || 0, label: d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) }); }
  }
  bars('history', buckets, 'blocked attempts', r.by === 'hour' ? 'hour' : 'day');
  $('rangelabel').textContent = '· last ' + range;
  document.body.dataset.history = range;
}
document.querySelectorAll('button.range').forEach((b) => b.addEventListener('click', () => { range = b.dataset.range; history().catch(status); }));
// The client and bundle pages (#client=IP, #bundle=NAME): everything from the history, 90 days.
async function detail() {
  const m = /^#(client|bundle)=(.+)$/.exec(location.hash);
  $('detail').hidden = !m;
  if (!m) return;
  const kind = m[1], key = decodeURIComponent(m[2]);
  const q = '&since=90d&' + kind + '=' + encodeURIComponent(key);
  const names = await api('api/report?by=domain' + q);
  const other = await api('api/report?by=' + (kind === 'client' ? 'bundle' : 'client') + q);
  let info = '';
  if (kind === 'client') {
    const who = await api('api/report?by=client' + q);
    const groups = await api('api/report?by=group' + q);
    const row = (who.body.rows || [])[0];
    info = 'name: ' + esc((row && row.name) || 'unknown') + ' · group: ' + esc(((groups.body.rows || []).map((g) => g.key)).join(', ') || 'default');
  }
  $('detailtitle').textContent = (kind === 'client' ? 'Client ' : 'Bundle ') + key + ' · last 90 days';
  $('detailinfo').innerHTML = '<p class="legend">' + info + ' <a href="#">close</a></p>';
  rows('detailnames', names.body.rows || [], (r) => [r.key, r.count, { text: when(r.first), cls: 'nowrap' }, { text: when(r.last), cls: 'nowrap' }], ['name asked', 'attempts', 'first (' + zone + ')', 'last']);
  rows('detailother', other.body.rows || [], (r) => [kind === 'client' ? bundleLink(r.key) : clientLink(r.key, r.name), r.count, { text: when(r.first), cls: 'nowrap' }, { text: when(r.last), cls: 'nowrap' }], [kind === 'client' ? 'bundle' : 'client', 'attempts', 'first', 'last']);
  const latest = await api('api/attempts?limit=20' + q);
  rows('detailattempts', latest.body.rows || [], attemptCells, attemptHead());
  document.body.dataset.detail = kind + ':' + key;
  $('detail').scrollIntoView();
}
window.addEventListener('hashchange', () => detail().catch(status));
// Single attempts (GET /api/attempts), newest first; "older attempts" reads the next page.
const ruleCell = (rule) => (rule ? { html: '<span title="' + esc(rule) + '">' + esc(rule.split('/').pop()) + '</span>', cls: 'nowrap' } : '');
// count > 1: identical attempts in that second, stored as one row ("×N").
const attemptCells = (r) => [{ text: when(r.time), cls: 'nowrap' }, clientLink(r.client, r.name), r.group, r.qname + ' ' + r.qtype + (r.count > 1 ? ' \u00d7' + r.count : ''), bundleLink(r.bundle), ruleCell(r.rule), r.node];
const attemptHead = () => ['time (' + zone + ')', 'client', 'group', 'name asked', 'bundle', 'rule', 'node'];
let search = { params: null, rows: [], next: null };
async function searchPage() {
  const p = new URLSearchParams(search.params);
  if (search.next) p.set('before', search.next);
  const res = await api('api/attempts?' + p);
  if (res.status !== 200) { $('results').innerHTML = '<tr><td>' + esc(res.body.error) + '</td></tr>'; $('searchmore').hidden = true; return; }
  search.rows = search.rows.concat(res.body.rows);
  search.next = res.body.next;
  rows('results', search.rows, attemptCells, attemptHead());
  $('searchmore').hidden = !search.next;
  document.body.dataset.search = search.params.toString() + '&shown=' + search.rows.length;
}
$('searchform').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const p = new URLSearchParams();
  for (const k of ['client', 'name', 'bundle', 'since', 'until', 'limit']) if (f.get(k)) p.set(k, String(f.get(k)));
  search = { params: p, rows: [], next: null };
  searchPage().catch(status);
});
$('searchmore').addEventListener('click', () => searchPage().catch(status));
// Actions: each form names its endpoint; a second button names another one.
document.querySelectorAll('form[data-action]').forEach((form) => {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const action = (ev.submitter && ev.submitter.dataset.alt) || form.dataset.action;
    const params = {};
    for (const [k, v] of new FormData(form)) if (v) params[k] = String(v);
    if (params.minutes) { params.for = params.minutes + 'm'; delete params.minutes; }
    if (action === 'resume') delete params.for;
    let res;
    try {
      if (form.dataset.method === 'GET') res = await api('api/' + action + '?' + new URLSearchParams(params));
      else res = await api('api/' + action, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
    } catch (e) { $('actionout').textContent = e.message; return; }
    $('actionout').textContent = (res.status < 300 ? 'done: ' : 'refused (' + res.status + '): ') + JSON.stringify(res.body, null, 1);
    document.body.dataset.action = action + ':' + res.status;
    bundles().catch(status);
    pauses().catch(status);
  });
});
// Pauses (sinkhole pause, the pause form, POST /api/pause): what each switches off and until when, with a resume button.
const left = (s) => (s >= 3600 ? Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min' : s >= 60 ? Math.floor(s / 60) + ' min ' + (s % 60) + ' s' : s + ' s');
async function pauses() {
  const res = await api('api/pause');
  if (res.status !== 200) return;
  const list = res.body.pauses || [];
  if (list.length === 0) $('pauses').innerHTML = '<tr><td>blocking is on for every group</td></tr>';
  else rows('pauses', list, (p) => [p.group === 'all' ? 'every group' : p.group, p.bundles.length ? p.bundles.join(', ') : 'none blocks now',
    { text: p.until === null ? 'until resumed' : when(p.until), cls: 'nowrap' }, { text: p.secondsLeft === null ? '–' : left(p.secondsLeft), cls: 'nowrap' },
    { html: '<button data-resume="' + esc(p.group) + '">' + (p.group === 'all' ? 'resume all' : 'resume') + '</button>' }],
  ['paused for', 'bundles not blocking', 'until (' + zone + ')', 'time left', '']);
  const lists = res.body.lists || [];
  $('lists').hidden = lists.length === 0;
  if (lists.length) rows('lists', lists, (l) => [l.bundle, { text: l.url, cls: 'up' }, { text: l.checkedAt === null ? 'not fetched yet' : when(l.checkedAt), cls: 'nowrap' }, l.rules], ['list-url bundle', 'URL', 'last fetched', 'rules']);
  document.body.dataset.pauses = String(list.length);
}
$('pauses').addEventListener('click', async (ev) => {
  const button = ev.target.closest('button[data-resume]');
  if (!button) return;
  const group = button.dataset.resume;
  let res;
  try {
    // "all" ends every pause (POST /api/resume with no group).
    res = await api('api/resume', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(group === 'all' ? {} : { group }) });
  } catch (e) { $('actionout').textContent = e.message; return; }
  $('actionout').textContent = (res.status < 300 ? 'done: ' : 'refused (' + res.status + '): ') + JSON.stringify(res.body, null, 1);
  document.body.dataset.action = 'resume:' + res.status;
  pauses().catch(status);
});
async function bundles() {
  const res = await api('api/bundles');
  if (res.status === 200) rows('bundlelist', res.body.bundles, (b) => [bundleLink(b.name), b.enabled ? 'enabled' : 'disabled', b.rules, b.description], ['bundle', 'state', 'rules', 'description']);
}
function status(e) { $('status').textContent = 'cannot reach the API: ' + e.message; }
async function refresh() {
  const { status: code, body: s } = await api('api/stats');
  if (code !== 200) throw new Error(s.error || String(code));
  $('queries').textContent = s.queries;
  $('blocked').textContent = s.blocked;
  $('share').textContent = pct(s.blockedShare);
  $('hitrate').textContent = pct(s.cache.hitRate);
  $('rules').textContent = s.rules;
  chart(s.last24h);
  rows('clients', s.topBlockedClients, (r) => [clientLink(r.key, r.name), r.count]);
  rows('bundles', s.topBlockedBundles, (r) => [bundleLink(r.key), r.count]);
  rows('domains', s.topBlockedDomains, (r) => [r.key, r.count]);
  rows('upstreams', s.upstreams, (u) => [{ text: u.upstream, cls: 'up' }, { text: u.lastAnswerSecondsAgo === null ? 'no answer yet' : u.lastAnswerSecondsAgo + ' s ago', cls: 'nowrap' }, u.timeouts], ['upstream', 'last answer', 'timeouts']);
  $('canary').textContent = (s.canaryAnswers || 0) + ' canary answers (browsers and wait-ready asking whether DoH is allowed; not counted as attempts)';
  // dohBypassClients: [{ key, count, name? }], clients that tried DoH servers (the doh-bypass bundle), when the server reports them.
  if (s.dohBypassClients) rows('doh', s.dohBypassClients, (c) => [clientLink(c.key, c.name), c.count], ['clients that tried DoH servers', 'attempts']);
  rows('recent', s.recentBlocked, (r) => [{ text: when(r.time), cls: 'nowrap' }, clientLink(r.client, r.name), r.qname + ' ' + r.qtype, { html: '<span title="' + esc(r.rule) + '">' + esc(r.rule.split('/').pop()) + '</span>', cls: 'nowrap' }, bundleLink(r.bundle)], ['time (' + zone + ')', 'client', 'name asked', 'rule', 'bundle']);
  $('status').textContent = 'up ' + Math.round(s.uptimeSeconds / 60) + ' min · updated ' + new Date().toLocaleTimeString();
  document.body.dataset.loaded = 'yes';
}
// In a fleet (--redis): every node (DOWN when its heartbeat stopped) and the fleet's counts of the last 24 h, from Redis.
async function fleet() {
  const res = await api('api/fleet');
  if (res.status === 404) return;
  $('fleetbox').hidden = false;
  if (res.status !== 200) { $('fleetsum').textContent = '· ' + (res.body.error || res.status); return; }
  const v = res.body, up = v.nodes.filter((n) => n.up).length;
  $('fleetsum').textContent = '· ' + v.nodes.length + ' nodes, ' + up + ' up, ' + (v.nodes.length - up) + ' down · policy version ' + v.policyVersion + ' · counts over the last ' + v.hours.length + ' h';
  rows('fleet', v.nodes, (n) => { const c = v.perNode[n.node] || { queries: 0, blocked: 0 }; return [{ text: n.up ? 'up' : 'DOWN', cls: 'nowrap' }, n.site + '/' + n.node, n.role, n.policyVersion, c.queries, c.blocked, n.upstreamHealthy ? 'ok' : 'failing', { text: n.secondsSinceHeartbeat + ' s ago', cls: 'nowrap' }]; },
    ['state', 'site/node', 'role', 'policy', 'queries', 'blocked', 'upstream', 'heartbeat']);
  rows('fleetsites', Object.entries(v.sites).map(([site, s]) => ({ site, ...s })), (s) => ['site ' + s.site, s.queries, s.blocked], ['site', 'queries', 'blocked']);
  document.body.dataset.fleet = v.nodes.map((n) => n.node + ':' + (n.up ? 'up' : 'down')).join(',');
}
refresh().then(() => Promise.all([history(), detail(), bundles(), pauses(), fleet()])).catch(status);
setInterval(() => refresh().then(pauses).then(fleet).catch(status), 5000);
</script>
</body>
</html>
`;
