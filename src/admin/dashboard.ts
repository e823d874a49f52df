// The dashboard page served at / by the admin API: one self-contained HTML page (no CDN,
// no framework) that reads /api/stats every 5 seconds. It holds no data itself, so it is
// served without a token; when the API asks for one, the page asks the admin for it.
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
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; min-width: 0; }
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
</style>
</head>
<body>
<header><h1>sinkhole</h1><span id="status">loading…</span></header>
<main>
  <section class="wide"><h2>Totals</h2><div class="tiles">
    <div class="tile"><b id="queries">–</b><span>queries</span></div>
    <div class="tile"><b id="blocked">–</b><span>blocked</span></div>
    <div class="tile"><b id="share">–</b><span>blocked share</span></div>
    <div class="tile"><b id="hitrate">–</b><span>cache hit rate</span></div>
    <div class="tile"><b id="rules">–</b><span>rules</span></div>
  </div></section>
  <section class="wide"><h2>Last 24 hours</h2>
    <svg id="chart" viewBox="0 0 960 160" preserveAspectRatio="none" role="img" aria-label="queries and blocked attempts per hour"></svg>
    <div class="legend"><i style="background:var(--ok)"></i>queries<i style="background:var(--blocked)"></i>blocked</div>
  </section>
  <section><h2>Top blocked clients</h2><table id="clients"></table></section>
  <section><h2>Top blocked bundles</h2><table id="bundles"></table></section>
  <section><h2>Top blocked domains</h2><table id="domains"></table></section>
  <section><h2>Upstreams</h2><table id="upstreams"></table></section>
  <section class="wide"><h2>Latest blocked attempts</h2><table id="recent"></table></section>
</main>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const pct = (x) => (x * 100).toFixed(1) + '%';
function rows(table, list, cells) {
  $(table).innerHTML = list.length ? list.map((r) => '<tr>' + cells(r).map((c, i) => '<td' + (i && typeof c === 'number' ? ' class="n"' : '') + '>' + esc(c) + '</td>').join('') + '</tr>').join('') : '<tr><td>none yet</td></tr>';
}
function chart(hours) {
  const max = Math.max(1, ...hours.map((h) => h.queries));
  const w = 960 / hours.length;
  $('chart').innerHTML = hours.map((h, i) => {
    const q = (h.queries / max) * 150, b = (h.blocked / max) * 150;
    return '<rect x="' + (i * w + 2) + '" y="' + (158 - q) + '" width="' + (w - 4) + '" height="' + q + '" fill="var(--ok)" opacity=".35"><title>' + esc(h.hour) + ': ' + h.queries + ' queries</title></rect>' +
      '<rect x="' + (i * w + 2) + '" y="' + (158 - b) + '" width="' + (w - 4) + '" height="' + b + '" fill="var(--blocked)" data-blocked="' + h.blocked + '"><title>' + esc(h.hour) + ': ' + h.blocked + ' blocked</title></rect>';
  }).join('');
}
async function refresh() {
  const headers = localStorage.sinkholeToken ? { authorization: 'Bearer ' + localStorage.sinkholeToken } : {};
  const res = await fetch('api/stats', { headers });
  if (res.status === 401) {
    const token = prompt('Admin token');
    if (token) { localStorage.sinkholeToken = token; return refresh(); }
    $('status').textContent = 'a token is needed';
    return;
  }
  const s = await res.json();
  $('queries').textContent = s.queries;
  $('blocked').textContent = s.blocked;
  $('share').textContent = pct(s.blockedShare);
  $('hitrate').textContent = pct(s.cache.hitRate);
  $('rules').textContent = s.rules;
  chart(s.last24h);
  rows('clients', s.topBlockedClients, (r) => [r.key, r.count]);
  rows('bundles', s.topBlockedBundles, (r) => [r.key, r.count]);
  rows('domains', s.topBlockedDomains, (r) => [r.key, r.count]);
  rows('upstreams', s.upstreams, (u) => [u.upstream, u.lastAnswerSecondsAgo === null ? 'no answer yet' : 'answered ' + u.lastAnswerSecondsAgo + ' s ago', u.timeouts + ' timeouts']);
  rows('recent', s.recentBlocked, (r) => [r.time.slice(11, 19), r.client, r.qname + ' ' + r.qtype, r.bundle]);
  $('status').textContent = 'up ' + Math.round(s.uptimeSeconds / 60) + ' min · updated ' + new Date().toLocaleTimeString();
  document.body.dataset.loaded = 'yes';
}
refresh().catch((e) => ($('status').textContent = 'cannot reach the API: ' + e.message));
setInterval(() => refresh().catch((e) => ($('status').textContent = 'cannot reach the API: ' + e.message)), 5000);
</script>
</body>
</html>
`;
