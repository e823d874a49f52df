// A blocklist folder of 20,000 small files: a line appended to one of them is blocked within
// 3 s (it took 17 s: every file stat'd one after the other, then the whole set rebuilt). The
// reload stats the files 32 at a time, reuses every unchanged one as it is, and reads only
// the appended lines of the one that grew.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../../helpers/client.js';
import { T } from '../../helpers/dns.js';
import { startSinkhole } from '../../helpers/server.js';
import { startUpstream } from '../../helpers/upstream.js';

const FILES = 20_000;
/** The bound this test holds a reload of the folder to, from the append to the first blocked answer. */
const BOUND_MS = 3000;

t.test(`${FILES} files: an appended line is blocked within ${BOUND_MS / 1000} s`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-many-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (let i = 0; i < FILES; i++) {
    writeFileSync(join(dir, `f${String(i).padStart(5, '0')}.txt`), `# file ${i}\na${i}.many.example\nb${i}.many.example\nc${i}.many.example\n`);
  }
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.7' }] }));
  const started = performance.now();
  const s = await startSinkhole({ upstream: upstream.address, dir });
  t.comment(`started with ${FILES} files in ${Math.round(performance.now() - started)} ms`);
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  const blocked = async (name: string): Promise<boolean> => (await ask(s.port, name, T.A)).answers[0]?.text === '127.0.0.1';
  t.ok(await blocked('b12345.many.example'), 'the files are loaded');
  t.notOk(await blocked('appended.many.example'));
  for (let round = 0; round < 2; round++) {
    const name = `appended${round}.many.example`;
    const t0 = performance.now();
    appendFileSync(join(dir, `f${String(7 + round * 9000).padStart(5, '0')}.txt`), `${name}\n`);
    let ms = -1;
    while (performance.now() - t0 < 10_000) {
      if (await blocked(name)) {
        ms = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const line = s.logs.filter((l) => l.msg === 'blocklists reloaded').at(-1);
    t.comment(`append ${round}: blocked after ${Math.round(ms)} ms (reload logged ${String(line?.ms)} ms, incremental ${String(line?.incremental)})`);
    t.ok(ms >= 0 && ms <= BOUND_MS, `blocked within ${BOUND_MS} ms (${Math.round(ms)} ms)`);
  }
  t.ok(await blocked('c19999.many.example'), 'every other file still blocks');
});
