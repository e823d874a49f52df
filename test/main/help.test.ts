// What a person sees when they ask: every subcommand's --help (its own synopsis and exactly
// its own options), --version, the exit status of each kind of failure, and the config file
// an installed copy reads by itself.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SERVER_OPTIONS } from '../../src/config/config.js';
import { COMMANDS } from '../../src/main/commands/index.js';
import { freePort } from '../helpers/server.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'main', 'cli.js');
const run = (args: string[], opts: { cli?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) =>
  spawnSync(process.execPath, [opts.cli ?? CLI, ...args], { encoding: 'utf8', timeout: 20000, env: { ...process.env, ...opts.env }, cwd: opts.cwd });

function temp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-help-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('every subcommand answers --help with its own synopsis and exactly its own options', async (t) => {
  const all = [...SERVER_OPTIONS, ...COMMANDS.flatMap((c) => c.own)];
  for (const c of COMMANDS) {
    const r = run([c.name, '--help']);
    t.equal(r.status, 0, `${c.name} --help: exit 0`);
    t.equal(r.stderr, '', `${c.name} --help: nothing on stderr`);
    t.ok(r.stdout.startsWith(`Usage: sinkhole ${c.name}${c.operands ? ` ${c.operands}` : ''}`), `${c.name}: its synopsis`);
    for (const o of all) {
      // (?![\\w-]): --client is not --client-names.
      const mentioned = new RegExp(`^  --${o.name}(?![\\w-])`, 'm').test(r.stdout);
      // A name is one option per command (pause's --group is not the server's group line).
      const takes = all.some((x) => x.name === o.name && x.commands.includes(c.name));
      t.equal(mentioned, takes, `${c.name} --help ${mentioned ? 'lists' : 'leaves out'} --${o.name}`);
    }
    t.equal(run([c.name, '-h']).stdout, r.stdout, `${c.name} -h is the same`);
    t.equal(run(['help', c.name]).stdout, r.stdout, `help ${c.name} is the same`);
  }
  t.match(run(['check', '--help']).stdout, /^Usage: sinkhole check NAME \[options\]$/m);
  t.match(run(['enable', '--help']).stdout, /^Usage: sinkhole enable NAME \[options\]$/m);
  t.match(run(['wait-ready', '--help']).stdout, /--timeout SECONDS\n.*\n.*\n\s+default: 60/);
});

t.test('sinkhole help, no command, --version', async (t) => {
  const help = run(['help']);
  t.equal(help.status, 0);
  for (const c of COMMANDS) t.match(help.stdout, new RegExp(`^  ${c.name}\\b`, 'm'), `lists ${c.name}`);
  t.match(help.stdout, /^  3  something the command needs did not answer/m, 'the exit statuses');
  const none = run([]);
  t.equal(none.status, 2, 'no command: the usage, exit 2');
  t.equal(none.stdout, help.stdout);
  const version = run(['--version']);
  t.equal(version.status, 0);
  t.equal(version.stdout, `sinkhole ${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  const extra = run(['stats', 'now']);
  t.equal(extra.status, 2);
  t.equal(extra.stderr, 'sinkhole: unexpected argument "now" (see "sinkhole stats --help")\n', 'an operand a command does not take');
  const unknown = run(['help', 'frobnicate']);
  t.equal(unknown.status, 2);
  t.equal(unknown.stderr, 'sinkhole: unknown command "frobnicate" (see "sinkhole help")\n');
});

t.test('exit status 3 when what a command needs does not answer; 2 when the caller must fix something', async (t) => {
  const closed = await freePort();
  const stats = run(['stats', '--admin', `127.0.0.1:${closed}`]);
  t.equal(stats.status, 3, 'stats: admin API not answering');
  t.equal(stats.stderr, `sinkhole: cannot reach the admin API at http://127.0.0.1:${closed}/api/stats: ECONNREFUSED; is the server running with --admin?\n`);

  const wait = run(['wait-ready', '--listen', `127.0.0.1:${await freePort()}`, '--timeout', '0.3']);
  t.equal(wait.status, 3, 'wait-ready: nothing answered in time');
  t.match(wait.stderr, /^sinkhole: no answer from 127\.0\.0\.1:\d+ within 0\.3 s; see "journalctl -u sinkhole"\n$/);

  let status = 401;
  const server = createServer((_req, res) => {
    res.statusCode = status;
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  // Asynchronous: the HTTP server lives in this process.
  const runAsync = (args: string[]) => new Promise<{ status: number | null; stderr: string }>((resolve) => {
    import('node:child_process').then(({ spawn }) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => resolve({ status: code, stderr }));
    });
  });
  const refused = await runAsync(['stats', '--admin', `127.0.0.1:${port}`]);
  t.equal(refused.status, 2, 'a refused token: the caller must fix it');
  t.match(refused.stderr, /answered 401: pass --admin-token/);
  status = 500;
  const failing = await runAsync(['stats', '--admin', `127.0.0.1:${port}`]);
  t.equal(failing.status, 3, 'a failing server: runtime');
  t.equal(run(['stats', '--cache-size', '1']).status, 2, 'a flag that is not for stats: exit 2');
});

t.test('an installed copy reads /etc/sinkhole/sinkhole.conf under its root; --config and SINKHOLE_CONFIG override it', async (t) => {
  const root = temp(t);
  const app = join(root, 'opt', 'sinkhole');
  mkdirSync(app, { recursive: true });
  cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
  const cli = join(app, 'dist', 'main', 'cli.js');
  const lists = (name: string): string => {
    const dir = join(root, name);
    mkdirSync(join(dir, 'available'), { recursive: true });
    writeFileSync(join(dir, `${name}.txt`), `# ${name} bundle\n${name}.example\n`);
    return dir;
  };
  const env = { SINKHOLE_CONFIG: undefined };

  const before = run(['list'], { cli, cwd: root, env });
  t.equal(before.status, 2, 'no config file yet: the default ./blocklists');
  t.match(before.stderr, /cannot read blocklist folder \.\/blocklists: ENOENT/);

  const conf = join(root, 'etc', 'sinkhole', 'sinkhole.conf');
  mkdirSync(join(root, 'etc', 'sinkhole'), { recursive: true });
  writeFileSync(conf, `blocklists ${lists('installed')}\n`);
  const list = run(['list'], { cli, cwd: '/', env });
  t.equal(list.status, 0, list.stderr);
  t.match(list.stdout, /installed\s+enabled\s+1\s+installed bundle/, 'from any folder, the installed config is read');
  t.match(run(['list', '--help'], { cli, env }).stdout, `now: ${conf}\n        (the installed default)`, '--help shows the path');
  t.match(run(['help'], { cli, env }).stdout, `Config file: ${conf}`);

  const other = join(root, 'other.conf');
  writeFileSync(other, `blocklists ${lists('other')}\n`);
  t.match(run(['list', '--config', other], { cli, env }).stdout, /^other\s+enabled/m, '--config wins');
  t.match(run(['list'], { cli, env: { SINKHOLE_CONFIG: other } }).stdout, /^other\s+enabled/m, 'SINKHOLE_CONFIG wins');
  t.equal(run(['list'], { cli, cwd: root, env: { SINKHOLE_CONFIG: '' } }).status, 2, 'SINKHOLE_CONFIG empty: no file');

  // The source checkout never reads the machine's config by itself, but honours SINKHOLE_CONFIG.
  t.match(run(['list', '--help'], { env }).stdout, /now: none\n\s+\(run from a source checkout/);
  t.match(run(['list'], { env: { SINKHOLE_CONFIG: other } }).stdout, /^other\s+enabled/m);
});
