// A real redis-server for the fleet tests, on a free port in a temp folder (no persistence),
// stopped by its PID; and fleet nodes started in-process with short fleet timings.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { buildConfig } from '../../src/config/config.js';
import type { FleetTiming } from '../../src/fleet/node.js';
import { startServer } from '../../src/main/serve.js';
import { DEFAULT_RELOAD_OPTIONS } from '../../src/stages/policy/reload.js';
import { policySettingsFrom } from '../../src/stages/policy/group-setup.js';
import { captureLogs, freePort, type TestServer } from '../helpers/server.js';

export const inCi = process.env.CI === 'true';

/** False (and a comment) when redis-server is missing outside CI; a failure in CI. */
export function needRedis(t: Test): boolean {
  if (spawnSync('sh', ['-c', 'command -v redis-server && command -v redis-cli']).status === 0) return true;
  t.notOk(inCi, 'redis-server is installed in CI (.ci/run installs redis-server)');
  t.comment('skipped: redis-server is not installed here (apt-get install redis-server)');
  return false;
}

export async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface TestRedis {
  port: number;
  url: string;
  pid: number;
  /** Starts it again on the same port (after stop). */
  start(): Promise<void>;
  stop(): Promise<void>;
  cli(...args: string[]): string;
}

export async function startRedis(t: Test, port?: number): Promise<TestRedis> {
  const p = port ?? (await freeTcpPort());
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-redis-'));
  let child: ChildProcess | null = null;
  const r: TestRedis = {
    port: p, url: `redis://127.0.0.1:${p}`, pid: 0,
    start: async () => {
      child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
      r.pid = child.pid!;
      const until = Date.now() + 5000;
      while (!(await canConnect(p))) {
        if (Date.now() > until) throw new Error(`redis-server did not listen on 127.0.0.1:${p} within 5 s`);
        await sleep(20);
      }
    },
    stop: async () => {
      const c = child;
      child = null;
      if (c === null || c.exitCode !== null) return;
      const exited = new Promise((res) => c.once('exit', res));
      process.kill(c.pid!, 'SIGKILL');
      await exited;
    },
    cli: (...args) => spawnSync('redis-cli', ['-p', String(p), ...args], { encoding: 'utf8' }).stdout.trim(),
  };
  await r.start();
  t.teardown(async () => {
    await r.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return r;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Short timings, so that tests take seconds. */
export const FAST: Partial<FleetTiming> = { connectWaitMs: 800, leaseMs: 3000, heartbeatMs: 500, figuresFlushMs: 1000, cacheFlushMs: 100, pollMs: 1000 };

export interface NodeOptions {
  upstream: string;
  redis: string;
  name: string;
  role: 'primary' | 'replica';
  /** The node's own blocklist folder. */
  dir: string;
  stateDir: string;
  site?: string;
  args?: string[];
  /** Config-file policy lines (group, block, list-url…); the state folder is the node's. */
  policy?: { name: string; value: string }[];
}

export async function startNode(o: NodeOptions): Promise<TestServer> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = buildConfig([
      '--listen', `127.0.0.1:${port}`, '--upstream', o.upstream, '--blocklists', o.dir, '--rate-limit', '0', '--network-rate-limit', '0', '--max-inflight-per-client', '0',
      '--redis', o.redis, '--node-name', o.name, '--fleet-role', o.role, '--state-dir', o.stateDir, '--site', o.site ?? 'default',
      // Several nodes share this thread with the test: a turn held up by one node (a reload, a
      // burst of the test's queries) must not count as overload and drop another's queries
      // (as test/helpers/server.ts; test/net/udp-overload.test.ts tests the drop).
      '--udp-max-wait', '0', ...(o.args ?? []),
    ]);
    const { output, logs } = captureLogs();
    try {
      const policy = policySettingsFrom((o.policy ?? []).map((l, i) => ({ ...l, where: `test.conf:${i + 1}` })), o.stateDir);
      const server = await startServer(config, output, { ...DEFAULT_RELOAD_OPTIONS, debounceMs: 50 }, policy, FAST);
      return { port, dir: o.dir, config, server, logs, close: () => server.stop() };
    } catch (err) {
      if (attempt < 5 && /already in use/.test((err as Error).message)) continue;
      throw err;
    }
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `sinkhole-${prefix}-`));
}

/** Polls `probe` until true or `ms` passes; resolves with the milliseconds it took, or -1. */
export async function within(ms: number, probe: () => Promise<boolean>, stepMs = 10): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < ms) {
    if (await probe()) return performance.now() - started;
    await sleep(stepMs);
  }
  return -1;
}
