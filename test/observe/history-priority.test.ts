// The history's threads (writer, report reader) run at nice 19, and in the SCHED_IDLE class
// where the batched-UDP addon is built, so that on a busy core they never take the CPU from
// the thread answering DNS; the DNS thread keeps its priority and class.
// Checked on a real server process through /proc/PID/task/TID/stat (Linux).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { addonRequired } from '../helpers/batch-udp.js';
import { loadBatchUdp } from '../../src/net/batch-udp.js';

const SCHED_IDLE = 5;

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Each thread's nice value (field 19 of /proc/PID/task/TID/stat), by thread id. */
function niceByThread(pid: number): Map<number, number> {
  return statField(pid, 19);
}

/** Each thread's scheduling policy (field 41: 0 SCHED_OTHER, 5 SCHED_IDLE), by thread id. */
function policyByThread(pid: number): Map<number, number> {
  return statField(pid, 41);
}

function statField(pid: number, field: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start at field 3 (state).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[field - 3]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

t.test('the history writer and report threads run at nice 19; the DNS thread at the process priority', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.1' }] }));
  t.teardown(() => upstream.close());
  const lists = mkdtempSync(join(tmpdir(), 'prio-lists-'));
  writeFileSync(join(lists, 'msn-messenger.txt'), 'messenger.hotmail.com\n');
  const port = await freePort();
  const adminPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', lists,
    '--state-dir', mkdtempSync(join(tmpdir(), 'prio-state-')), '--admin', `127.0.0.1:${adminPort}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"msg":"ready"')) resolve();
    });
  });
  const pid = child.pid!;
  // The writer starts with the server; the report thread at the first report.
  t.equal((await ask(port, 'messenger.hotmail.com', T.A)).answers[0]?.text, '127.0.0.1');
  // The database exists once the first batch is written (about a second).
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++, await sleep(100)) {
    status = (await fetch(`http://127.0.0.1:${adminPort}/api/report?by=bundle&since=1d`)).status;
  }
  t.equal(status, 200, 'a report was made (its thread started)');
  let low: number[] = [];
  for (let i = 0; i < 50 && low.length < 2; i++, await sleep(100)) {
    low = [...niceByThread(pid)].filter(([, nice]) => nice === 19).map(([tid]) => tid);
  }
  t.ok(low.length >= 2, `two threads at nice 19 (the writer and the report reader): ${low.length}`);
  t.notOk(low.includes(pid), 'not the DNS thread');
  // The server inherits this process's nice (0 under CI; 10 when the tests run under `nice -n 10`).
  t.equal(niceByThread(pid).get(pid), getPriority(), `the DNS thread keeps the priority it was started with (${getPriority()})`);
  t.equal(policyByThread(pid).get(pid), 0, 'the DNS thread stays in SCHED_OTHER');
  if (loadBatchUdp().addon === null) {
    if (addonRequired()) t.fail(`the addon must be built in CI: ${loadBatchUdp().reason}`);
    else t.comment('no batched-UDP addon: the history threads stay at nice 19 in SCHED_OTHER');
    return;
  }
  const policies = policyByThread(pid);
  t.same(low.map((tid) => policies.get(tid)), low.map(() => SCHED_IDLE), 'with the addon, the nice-19 threads are in SCHED_IDLE');
});
