// Starting the real server in-process for a test: a temporary blocklist folder, a free port
// on 127.0.0.1, logs captured as parsed JSON lines.
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { buildConfig, type Config } from '../../src/config/config.js';
import type { LogOutput } from '../../src/observe/log.js';
import { DEFAULT_RELOAD_OPTIONS, type ReloadOptions } from '../../src/stages/policy/reload.js';
import type { PolicySettings } from '../../src/stages/policy/group-setup.js';
import { startServer, type RunningServer } from '../../src/main/serve.js';
import { startUpstream, type Handler } from './upstream.js';

export interface TestServer {
  port: number;
  dir: string;
  config: Config;
  server: RunningServer;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function captureLogs(level = 'debug'): { output: LogOutput; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level, base: undefined }, stream);
  return { output: { log, flush: () => undefined, reopen: () => undefined }, logs };
}

export function writeLists(lists: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-test-'));
  for (const [name, text] of Object.entries(lists)) writeFileSync(join(dir, name), text);
  return dir;
}

export async function startSinkhole(opts: { upstream: string | string[]; lists?: Record<string, string>; args?: string[]; dir?: string; reload?: Partial<ReloadOptions>;
  policy?: PolicySettings; port?: number }): Promise<TestServer> {
  const dir = opts.dir ?? writeLists(opts.lists ?? {});
  const upstreams = Array.isArray(opts.upstream) ? opts.upstream : [opts.upstream];
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? await freePort();
    const args = [
      '--listen', `127.0.0.1:${port}`, ...upstreams.flatMap((u) => ['--upstream', u]), '--blocklists', dir,
      // Every test query comes from one address, often thousands at once: the per-client limits
      // are off unless a test sets them (test/stages/guard/ does).
      ...(opts.args?.some((a) => a.startsWith('--rate-limit')) ? [] : ['--rate-limit', '0']),
      ...(opts.args?.some((a) => a.startsWith('--max-inflight-per-client')) ? [] : ['--max-inflight-per-client', '0']),
      // The server shares its thread with the test, which may hold it while it sends thousands of
      // queries: those must not count as overload (test/net/udp-overload.test.ts tests that).
      ...(opts.args?.some((a) => a.startsWith('--udp-max-wait')) ? [] : ['--udp-max-wait', '0']),
      // Each server its own state folder (history.sqlite), not ./state shared by every test.
      ...(opts.args?.some((a) => a.startsWith('--state-dir')) ? [] : ['--state-dir', mkdtempSync(join(tmpdir(), 'sinkhole-state-'))]),
      ...(opts.args ?? []),
    ];
    const config = buildConfig(args);
    const { output, logs } = captureLogs();
    try {
      const server = await startServer(config, output, { ...DEFAULT_RELOAD_OPTIONS, ...opts.reload }, opts.policy ?? config.policy);
      // As `sinkhole serve --config FILE` does: SIGHUP and POST /reload read the file again.
      if (args.includes('--config')) server.rereadConfig = () => buildConfig(args);
      return {
        port, dir, config, server, logs,
        close: async () => {
          await server.stop();
          if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      if (attempt < 5 && /already in use/.test((err as Error).message)) continue;
      throw err;
    }
  }
}

/** An in-process upstream answering with `handler`, and a server forwarding to it; both stopped at teardown. */
export async function serverWithUpstream(t: { teardown(fn: () => unknown): void }, opts: { handler: Handler; lists?: Record<string, string>; args?: string[] }) {
  const upstream = await startUpstream(opts.handler);
  const s = await startSinkhole({ upstream: upstream.address, lists: opts.lists ?? {}, args: opts.args ?? [] });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  return { s, upstream };
}
