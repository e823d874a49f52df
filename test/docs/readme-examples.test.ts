// The README's runnable examples, run: every ```console block right after a line
// `<!-- example: NAME -->` is executed against a real server this test starts, and its output
// compared with the block. The rules (what `sinkhole`, `sudo`, `dig` and the /etc paths
// become, and the `...` wildcard) are written in the README's "Development" section.
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { NODE_FLAGS } from '../../src/main/node-flags.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { needTool } from '../helpers/tls-peers.js';
import { startUpstream } from '../helpers/upstream.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'main', 'cli.js');
/** What the test's upstream knows; every other name is NXDOMAIN. */
const UPSTREAM_A: Record<string, string> = {
  'www.example.org': '192.0.2.80', 'login.live.com': '192.0.2.80', 'gateway.messenger.hotmail.com': '192.0.2.81',
};

export interface Example {
  name: string;
  /** Line of the README where the block starts (1-based), for messages. */
  line: number;
  steps: { command: string; expected: string[] }[];
}

/** The runnable examples of a markdown text, in order. */
export function runnableExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  for (const m of markdown.matchAll(/^<!-- example: (\S+) -->\n```console\n([\s\S]*?)^```$/gm)) {
    const steps: Example['steps'] = [];
    for (const line of m[2]!.replace(/\n$/, '').split('\n')) {
      if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: [] });
      else if (steps.length > 0) steps.at(-1)!.expected.push(line);
      else throw new Error(`README.md example ${m[1]}: output before the first "$ " command`);
    }
    examples.push({ name: m[1]!, line: markdown.slice(0, m.index).split('\n').length + 1, steps });
  }
  return examples;
}

/** Whether output matches the expected lines: `...` in a line is any text; a line of only `...` any lines. */
export function outputMatches(expected: string[], output: string): boolean {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = expected.map((l) => (l === '...' ? '(?:[^\\n]*\\n)*?' : `${l.split('...').map(escape).join('[^\\n]*')}\\n`)).join('');
  const lines = output.replace(/\n$/, '');
  return new RegExp(`^${pattern}$`).test(lines === '' ? '' : `${lines}\n`);
}

t.test('the matcher: exact lines, `...` inside a line, `...` as lines, and a mismatch fails', async (t) => {
  t.ok(outputMatches(['127.0.0.1'], '127.0.0.1\n'));
  t.notOk(outputMatches(['127.0.0.1'], '192.0.2.80\n'), 'a different answer fails');
  t.notOk(outputMatches(['127.0.0.1'], ''), 'no output fails');
  t.notOk(outputMatches(['a', 'b'], 'a\n'), 'a missing line fails');
  t.ok(outputMatches(['up ... min'], 'up 12 min\n'));
  t.notOk(outputMatches(['up ... min'], 'up 12 min\nextra\n'), '`...` inside a line does not span lines');
  t.ok(outputMatches(['head', '...', 'tail'], 'head\nx\ny\ntail\n'));
  t.ok(outputMatches(['head', '...', 'tail'], 'head\ntail\n'));
  t.ok(outputMatches([], ''));
});

t.test('the README has runnable examples, and every marker is followed by a console block', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const markers = readme.match(/^<!-- example: \S+ -->$/gm) ?? [];
  const examples = runnableExamples(readme);
  t.equal(examples.length, markers.length, 'each <!-- example: NAME --> line is directly followed by a ```console block');
  t.ok(examples.length >= 5, `${examples.length} runnable examples`);
  t.equal(new Set(examples.map((e) => e.name)).size, examples.length, 'example names are unique');
  for (const e of examples) t.ok(e.steps.length > 0, `${e.name} has a command`);
});

t.test('every runnable README example gives the output the README shows', async (t) => {
  if (!needTool(t, 'dig', 'bind9-dnsutils')) return;
  const examples = runnableExamples(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  // /etc/sinkhole and /var/lib/sinkhole of the examples: a temp folder with the shipped lists.
  const root = mkdtempSync(join(tmpdir(), 'sinkhole-readme-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const etc = join(root, 'etc');
  const state = join(root, 'state');
  mkdirSync(etc);
  mkdirSync(state);
  cpSync(join(ROOT, 'blocklists'), join(etc, 'blocklists'), { recursive: true });
  writeFileSync(join(etc, 'hosts'), '');

  const upstream = await startUpstream((q) => {
    const address = UPSTREAM_A[q.name];
    if (address === undefined) return { rcode: 3 };
    return { answers: q.type === T.A ? [{ name: q.rawName, type: T.A, ttl: 60, data: address }] : [] };
  });
  t.teardown(() => upstream.close());
  const port = await freePort();
  const adminPort = await freePort();
  const config = join(etc, 'sinkhole.conf');
  writeFileSync(config, [
    `listen 127.0.0.1:${port}`,
    `upstream ${upstream.address}`,
    `blocklists ${join(etc, 'blocklists')}`,
    `state-dir ${state}`,
    `hosts-file ${join(etc, 'hosts')}`,
    'local-domain lan',
    `admin 127.0.0.1:${adminPort}`,
    '',
  ].join('\n'));

  const server = spawn(process.execPath, [...NODE_FLAGS, CLI, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  server.stdout.on('data', (b: Buffer) => { log += b.toString(); });
  server.stderr.on('data', (b: Buffer) => { log += b.toString(); });
  const exited = new Promise<void>((resolve) => server.on('exit', () => resolve()));
  t.teardown(async () => { server.kill('SIGTERM'); await exited; });
  for (let i = 0; i < 600 && !log.includes('"msg":"ready"') && server.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  if (!t.ok(log.includes('"msg":"ready"'), 'the server is ready')) { t.comment(log); return; }

  // What the README's commands mean here: the CLI of this tree, this server, these folders.
  const prelude = [
    `sinkhole() { ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"; }`,
    'sudo() { "$@"; }',
    'dig() { local a=() skip=0; for x in "$@"; do if [ "$skip" = 1 ]; then skip=0; continue; fi; case "$x" in',
    `  -p) skip=1;; @*) a+=(@127.0.0.1 -p ${port});; *) a+=("$x");; esac; done; command dig +time=2 +tries=2 "\${a[@]}"; }`,
  ].join('\n');
  const toTest = (command: string) => command.replaceAll('/etc/sinkhole/', `${etc}/`).replaceAll('/var/lib/sinkhole/', `${state}/`);
  const fromTest = (output: string) => output.replaceAll(`${etc}/`, '/etc/sinkhole/').replaceAll(`${state}/`, '/var/lib/sinkhole/');

  for (const example of examples) {
    await t.test(`README.md:${example.line} example ${example.name}`, async (t) => {
      for (const step of example.steps) {
        // Asynchronously: the upstream lives in this process and must keep answering meanwhile.
        const stdout = await new Promise<string>((resolve) => {
          execFile('bash', ['-c', `${prelude}\n${toTest(step.command)} 2>&1`], {
            encoding: 'utf8', timeout: 30_000, env: { ...process.env, SINKHOLE_CONFIG: config, NO_COLOR: '1' },
          }, (_error, out) => resolve(out));
        });
        const output = fromTest(stdout);
        t.ok(outputMatches(step.expected, output), `$ ${step.command}`, { expected: step.expected.join('\n'), got: output });
      }
    });
  }
});
