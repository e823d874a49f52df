// A config reload (POST /reload; SIGHUP runs the same code, see groups-e2e and
// list-url-reload) swaps allow-net in place, and names the changed settings that only a
// restart applies. Clients at several 127.x source addresses over real sockets.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, startSinkhole } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const root = mkdtempSync(join(tmpdir(), 'sinkhole-config-reload-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test('allow-net changes at a reload; restart-only settings are named, not applied', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const conf = join(root, 'sinkhole.conf');
  writeFileSync(conf, 'allow-net 127.0.1.0/24\ncache-size 1000\n');
  const adminPort = await freePort();
  const s = await startSinkhole({ upstream: upstream.address, args: ['--config', conf, '--admin', `127.0.0.1:${adminPort}`] });
  t.teardown(() => s.close());
  const rcode = async (from: string) => (await ask(s.port, 'www.example.org', T.A, { from })).rcode;
  const reload = async () => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  t.equal(await rcode('127.0.1.5'), 0, 'a client in allow-net is answered');
  t.equal(await rcode('127.0.2.9'), 5, 'one outside is refused');

  writeFileSync(conf, 'allow-net 127.0.1.0/24\nallow-net 127.0.2.0/24\ncache-size 2000\n');
  t.match(await reload(), { status: 200, body: { config: { reloaded: true, restartNeeded: ['cache-size'] } } });
  t.equal(await rcode('127.0.2.9'), 0, 'the network added is answered, no restart');
  t.equal(await rcode('127.0.3.1'), 5, 'others still refused');
  t.ok(s.logs.some((l) => l.msg === 'allow-net now 127.0.1.0/24 127.0.2.0/24'), 'the change is logged');
  t.ok(s.logs.some((l) => l.msg === 'config file: cache-size changed; in force at the next restart (systemctl restart sinkhole)'), 'a restart-only setting is named');

  // A bad allow-net line: the running networks stay.
  writeFileSync(conf, 'allow-net 127.0.1.0/33\n');
  const bad = await reload();
  t.equal(bad.status, 400);
  t.match(bad.body.config, { reloaded: false, error: new RegExp(`^${conf.replace(/[.]/g, '\\.')}:1: `) });
  t.equal(await rcode('127.0.2.9'), 0, 'kept');
  t.equal(await rcode('127.0.3.1'), 5, 'kept');

  // Back to the first networks; nothing needs a restart any more.
  writeFileSync(conf, 'allow-net 127.0.1.0/24\ncache-size 1000\n');
  t.match(await reload(), { status: 200, body: { config: { reloaded: true, restartNeeded: [] } } });
  t.equal(await rcode('127.0.2.9'), 5, 'the network removed is refused again');
});
