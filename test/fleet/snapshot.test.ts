// The snapshot's parts: what a primary reads (its folder, available/, stored list-url
// copies with catalogues, pause.json) and which paths a replica accepts from Redis.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { filesChecksum, localPath, manifestProblem, readPolicySources } from '../../src/fleet/snapshot.js';
import { tempDir } from './helpers.js';

t.test('a primary\'s sources become snapshot paths; a replica writes each under STATE_DIR/fleet/', async (t) => {
  const dir = tempDir('folder');
  mkdirSync(join(dir, 'available'));
  writeFileSync(join(dir, 'base.txt'), 'icq.com\n');
  writeFileSync(join(dir, 'available', 'chat.txt'), 'chat.example\n');
  writeFileSync(join(dir, 'notes.md'), 'not a list\n');
  const state = tempDir('state');
  mkdirSync(join(state, 'lists', 'services.catalogue'), { recursive: true });
  writeFileSync(join(state, 'lists', 'ads.txt'), 'ads.example\n');
  writeFileSync(join(state, 'lists', 'services.catalogue', 'tiktok.txt'), 'tiktok.com\n');
  writeFileSync(join(state, 'pause.json'), '{"version":1,"pauses":[]}\n');
  const files = await readPolicySources({
    blocklists: dir,
    lists: { dir: join(state, 'lists'), paths: [join(state, 'lists', 'ads.txt'), join(state, 'lists', 'services.catalogue', 'tiktok.txt')] },
    pauseFile: join(state, 'pause.json'),
  });
  t.same(files.map((f) => f.path).sort(), ['available/chat.txt', 'blocklists/base.txt', 'lists/ads.txt', 'lists/services.catalogue/tiktok.txt', 'state/pause.json']);
  t.same(files.map((f) => localPath(f.path)).sort(), ['blocklists/available/chat.txt', 'blocklists/base.txt', 'lists/ads.txt', 'lists/services.catalogue/tiktok.txt', 'pause.json']);
  const missing = await readPolicySources({ blocklists: dir, pauseFile: join(state, 'nope.json') });
  t.notOk(missing.some((f) => f.path.startsWith('state/')), 'no pause file: no pause part');
});

t.test('a manifest naming any other path is rejected whole', async (t) => {
  const hash = 'a'.repeat(64);
  const ok = { 'blocklists/a.txt': hash, 'available/b.txt': hash, 'lists/c.txt': hash, 'lists/d.catalogue/e.txt': hash, 'state/pause.json': hash };
  t.equal(manifestProblem({ version: 3, files: ok, checksum: filesChecksum(ok) }, 3), null, 'the five parts');
  for (const bad of ['lists/../x.txt', 'available/../../etc/passwd.txt', 'state/other.json', 'lists/a.catalogue/b/c.txt', 'blocklists/.hidden.txt', 'pause.json', 'lists/x.catalogue/../y.txt']) {
    const files = { ...ok, [bad]: hash };
    t.match(manifestProblem({ version: 3, files, checksum: filesChecksum(files) }, 3), /is not allowed/, `${bad} is refused`);
  }
});
