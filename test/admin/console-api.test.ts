// The console's actions through the API: block, allow, enable and disable a bundle, pause,
// resume and check, each with and without the token, with a foreign Host and a foreign
// Origin; the files in the blocklist folder are the truth, the change is in force at once,
// and every change is logged with who made it.
import { existsSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import t from 'tap';
import { T } from '../helpers/dns.js';
import { freePort, startSinkhole } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { buildConfig } from '../../src/config/config.js';

const TOKEN = 'console-test-token';

async function setup(t: { teardown(fn: () => unknown): void }, tokenArgs: string[] = ['--admin-token', TOKEN]) {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  const port = await freePort();
  const s = await startSinkhole({
    upstream: upstream.address,
    lists: { 'msn-messenger.txt': 'messenger.hotmail.com\n' },
    args: ['--admin', `127.0.0.1:${port}`, ...tokenArgs],
  });
  mkdirSync(join(s.dir, 'available'));
  writeFileSync(join(s.dir, 'available', 'icq.txt'), '# ICQ\nicq.com\n');
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  return { port, s };
}

function raw(port: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers }, setHost: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const auth = { authorization: `Bearer ${TOKEN}` };
const json = { 'content-type': 'application/json' };

async function verdict(port: number, name: string): Promise<unknown> {
  return (await raw(port, 'GET', `/api/check?name=${name}`, auth)).json.verdict;
}

/** Every action: method, path, JSON body, query string. */
const ACTIONS: [string, string, Record<string, string>][] = [
  ['POST', '/api/block', { name: 'chat.example.org' }],
  ['POST', '/api/allow', { name: 'chat.example.org' }],
  ['POST', '/api/bundles/enable', { bundle: 'icq' }],
  ['POST', '/api/bundles/disable', { bundle: 'icq' }],
  ['POST', '/api/pause', { group: 'default', for: '5m' }],
  ['POST', '/api/resume', { group: 'default' }],
  ['GET', '/api/check', { name: 'messenger.hotmail.com', client: '127.0.0.1' }],
  ['GET', '/api/bundles', {}],
];

t.test('without the token: 401 for every action, also from loopback, and nothing changes', async (t) => {
  const { port, s } = await setup(t);
  for (const [method, path, params] of ACTIONS) {
    const r = await raw(port, method, path, json, method === 'POST' ? JSON.stringify(params) : '');
    t.equal(r.status, 401, `${method} ${path} without a token`);
    const wrong = await raw(port, method, path, { ...json, authorization: 'Bearer nope' }, method === 'POST' ? JSON.stringify(params) : '');
    t.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
  }
  t.notOk(existsSync(join(s.dir, 'local.txt')), 'nothing written');
  t.ok(existsSync(join(s.dir, 'available', 'icq.txt')), 'the bundle stays disabled');
});

t.test('with a foreign Host or a foreign Origin: 403 for every action, even with the token', async (t) => {
  const { port, s } = await setup(t);
  for (const [method, path, params] of ACTIONS) {
    const body = method === 'POST' ? JSON.stringify(params) : '';
    const rebound = await raw(port, method, path, { ...auth, ...json, host: `attacker.example:${port}` }, body);
    t.equal(rebound.status, 403, `${method} ${path} with Host attacker.example`);
    if (method === 'POST') {
      const cross = await raw(port, method, path, { ...auth, ...json, origin: 'http://evil.example' }, body);
      t.equal(cross.status, 403, `${method} ${path} from Origin http://evil.example`);
      t.match(cross.json, { error: /cross-site request from Origin/ });
    }
  }
  t.notOk(existsSync(join(s.dir, 'local.txt')), 'nothing written');
});

t.test('with the token: block and allow write local.txt / local.allow.txt and are in force at once', async (t) => {
  const { port, s } = await setup(t);
  t.equal(await verdict(port, 'chat.example.org'), 'allowed', 'not blocked before');
  const started = Date.now();
  const blocked = await raw(port, 'POST', '/api/block', { ...auth, ...json, origin: `http://127.0.0.1:${port}` }, JSON.stringify({ name: 'Chat.Example.org' }));
  t.equal(blocked.status, 200, 'block (JSON body, the console\'s own Origin)');
  t.match(blocked.json, { blocked: 'chat.example.org', added: true });
  t.match(readFileSync(join(s.dir, 'local.txt'), 'utf8'), /^chat\.example\.org$/m, 'the name is a line of local.txt');
  t.equal(await verdict(port, 'chat.example.org'), 'blocked', 'in force');
  t.ok(Date.now() - started < 2000, `in force within 2 s (${Date.now() - started} ms)`);
  const again = await raw(port, 'POST', '/api/block?name=chat.example.org', auth);
  t.match(again.json, { added: false }, 'blocking twice writes it once (query-string parameters)');
  t.equal(readFileSync(join(s.dir, 'local.txt'), 'utf8').match(/^chat\.example\.org$/gm)?.length, 1);

  const allowed = await raw(port, 'POST', '/api/allow?name=chat.example.org', auth);
  t.equal(allowed.status, 200, 'allow (query string)');
  t.match(allowed.json, { allowed: 'chat.example.org', added: true });
  t.match(readFileSync(join(s.dir, 'local.allow.txt'), 'utf8'), /^chat\.example\.org$/m, 'the name is a line of local.allow.txt');
  t.notMatch(readFileSync(join(s.dir, 'local.txt'), 'utf8'), /chat\.example\.org/, 'and no longer in local.txt');
  t.not(await verdict(port, 'chat.example.org'), 'blocked', 'allowed at once');

  const bad = await raw(port, 'POST', '/api/block', { ...auth, ...json }, JSON.stringify({ name: 'not a name' }));
  t.equal(bad.status, 400, 'a bad name is refused');
  t.equal((await raw(port, 'POST', '/api/block', { ...auth, ...json }, '{"name": ')).status, 400, 'a broken JSON body is refused');

  // Every change is logged: who, from where, what.
  const changes = s.logs.filter((l) => l.msg === 'admin change');
  t.ok(changes.length >= 3, 'logged');
  t.match(changes[0], { who: 'token', from: '127.0.0.1', action: 'POST /api/block', params: { name: 'Chat.Example.org' }, status: 200 });
  t.match(changes.find((l) => l.action === 'POST /api/allow'), { who: 'token', params: { name: 'chat.example.org' } });
});

t.test('with the token: bundles enable and disable move the file and are in force at once', async (t) => {
  const { port, s } = await setup(t);
  t.equal(await verdict(port, 'icq.com'), 'allowed');
  const enabled = await raw(port, 'POST', '/api/bundles/enable', { ...auth, ...json }, JSON.stringify({ bundle: 'icq' }));
  t.equal(enabled.status, 200);
  t.ok(existsSync(join(s.dir, 'icq.txt')), 'moved up into the folder');
  t.equal(await verdict(port, 'icq.com'), 'blocked', 'in force');
  const list = await raw(port, 'GET', '/api/bundles', auth);
  t.match(list.json, { bundles: [{ name: 'icq', enabled: true }, { name: 'msn-messenger', enabled: true }] });
  const disabled = await raw(port, 'POST', '/api/bundles/disable?bundle=icq', auth);
  t.equal(disabled.status, 200);
  t.ok(existsSync(join(s.dir, 'available', 'icq.txt')), 'moved back to available/');
  t.equal(await verdict(port, 'icq.com'), 'allowed', 'no longer blocked');
  t.equal((await raw(port, 'POST', '/api/bundles/enable?bundle=nosuch', auth)).status, 404, 'an unknown bundle');
  t.equal((await raw(port, 'POST', '/api/bundles/enable', auth)).status, 400, 'no bundle given');
  t.match(s.logs.filter((l) => l.msg === 'admin change').map((l) => l.action), ['POST /api/bundles/enable', 'POST /api/bundles/disable']);
});

t.test('with the token: pause and resume take a JSON body too; check answers', async (t) => {
  const { port } = await setup(t);
  const paused = await raw(port, 'POST', '/api/pause', { ...auth, ...json }, JSON.stringify({ group: 'default', for: '5m' }));
  t.equal(paused.status, 200);
  t.match(paused.json, { paused: 'default' });
  t.match((await raw(port, 'GET', '/api/pause', auth)).json, { pauses: [{ group: 'default' }] });
  const resumed = await raw(port, 'POST', '/api/resume', { ...auth, ...json }, JSON.stringify({ group: 'default' }));
  t.equal(resumed.status, 200);
  t.match(resumed.json, { resumed: true, pauses: [] });
  const check = await raw(port, 'GET', '/api/check?name=messenger.hotmail.com&client=127.0.0.1', auth);
  t.equal(check.status, 200);
  t.match(check.json, { verdict: 'blocked' });
});

t.test('--admin-token-file: the token from a file', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'sinkhole-token-'));
  const file = join(folder, 'token');
  writeFileSync(file, `${TOKEN}\n`);
  const { port } = await setup(t, ['--admin-token-file', file]);
  t.equal((await raw(port, 'POST', '/api/block?name=x.example', {})).status, 401, 'without it');
  t.equal((await raw(port, 'POST', '/api/block?name=x.example', auth)).status, 200, 'with the token the file holds');
  t.throws(() => buildConfig(['--admin', '127.0.0.1:1', '--admin-token-file', join(folder, 'missing')]), /cannot read .*missing \(ENOENT\)/);
  t.throws(() => buildConfig(['--admin', '127.0.0.1:1', '--admin-token', 'a', '--admin-token-file', file]), /not both/);
});
