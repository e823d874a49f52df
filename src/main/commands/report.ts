// `sinkhole report`: blocked attempts from the history database, grouped and counted, as a
// table, CSV or JSON. Opens the database read-only: works while the server runs and while
// it is stopped.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { configFrom, ConfigError, UnreachableError, type Config } from '../../config/config.js';
import { flag, optional } from '../../config/option.js';
import { redactUrl, RedisLink } from '../../fleet/link.js';
import { fleetReport, fleetReportProblem, type FleetReportBy } from '../../fleet/report.js';
import type { Logger } from '../../observe/log.js';
import { stateDir } from '../../config/options/process.js';
import { text as textValue } from '../../config/values.js';
import type { Command } from './command.js';
import { DEFAULT_STATE_DIR } from '../../observe/history/history.js';
import { parseReportArgs } from '../../observe/history/report-args.js';
import { report, reportCsv, reportTable } from '../../observe/history/report.js';
import { DB_FILE, openReader } from '../../observe/history/schema.js';

export const REPORT_HELP = `Usage: sinkhole report [options]

Blocked attempts stored by the server (--history blocked|all), counted per key, with the
first and last time. Reads the history database read-only, so it works while the server
runs and while it is stopped.

Options:
  --since WHEN        start: 7d, 12h, 30m, 2w (before now), a date (2026-11-01, local
                      midnight) or an ISO time (default 7d)
  --until WHEN        end: now (default), the same forms; a date means the end of that day
  --by KEY            client (default), bundle, domain, group, day or hour
  --client IP|NAME    only this client (address, or name as the server knows it)
  --bundle NAME       only this bundle (e.g. whatsapp)
  --format FORMAT     table (default; local times), csv (key,name,count,first,last) or
                      json ({"since","until","by","rows":[{"key","name","count","first","last"}]})
  --state-dir DIR     the server's --state-dir (default ${DEFAULT_STATE_DIR}; /var/lib/sinkhole
                      with the systemd unit)

Examples:
  sinkhole report --since 7d --by client
  sinkhole report --since 2026-11-01 --until 2026-11-30 --by bundle --format csv
  sinkhole report --client laptop-7 --by domain`;

/** The flags of `sinkhole report`, without `--`. */
export const REPORT_FLAGS = ['since', 'until', 'by', 'client', 'bundle', 'format', 'state-dir'];
const FORMATS = ['table', 'csv', 'json'];

/** Runs `sinkhole report ARGS`: prints the report and returns the exit code; throws ConfigError for a bad flag or a missing database. */
export function runReport(args: string[], now = Date.now(), print: (text: string) => void = (t) => process.stdout.write(t)): number {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--help' || arg === '-h') {
      print(`${REPORT_HELP}\n`);
      return 0;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !REPORT_FLAGS.includes(m[1]!)) throw new ConfigError(`report: unknown argument "${arg}" (see "sinkhole report --help")`);
    const value = m[2] ?? args[++i];
    if (value === undefined) throw new ConfigError(`report: option --${m[1]} needs a value`);
    values.set(m[1]!, value);
  }
  printReport((name) => values.get(name), now, print);
  return 0;
}

/**
 * The report for flag values already parsed (by name without `--`: since, until, by,
 * client, bundle, format, state-dir; undefined = not given), for a command parser that
 * declares these flags itself.
 */
export function printReport(get: (name: string) => string | undefined, now: number, print: (text: string) => void): void {
  const q = parseReportArgs(get, now);
  if ('error' in q) throw new ConfigError(`report: ${q.error}`);
  const format = get('format') ?? 'table';
  if (!FORMATS.includes(format)) throw new ConfigError(`report: --format "${format}" is not one of ${FORMATS.join(', ')}`);
  const dir = get('state-dir') ?? DEFAULT_STATE_DIR;
  const path = join(dir, DB_FILE);
  if (!existsSync(path)) {
    const why = existsSync(dir) && statSync(dir).isDirectory() ? `${dir} holds no ${DB_FILE}` : `${dir} is not a folder`;
    throw new ConfigError(`report: no history database at ${path} (${why}); pass the server's --state-dir, and run it with --history blocked or all`);
  }
  let db;
  try {
    db = openReader(path);
  } catch (err) {
    throw new ConfigError(`report: cannot open ${path} read-only: ${(err as Error).message}`);
  }
  try {
    const r = report(db, q);
    print(format === 'json' ? `${JSON.stringify(r)}\n` : format === 'csv' ? reportCsv(r) : reportTable(r));
  } finally {
    db.close();
  }
}

const text = (name: string, arg: string, help: string) => optional({ name, arg, value: textValue, commands: ['report'], help });

export const sinceOption = text('since', 'WHEN', 'start: 7d, 12h, 30m, 2w (before now), a date (2026-11-01, local midnight) or an ISO time (default 7d)');
export const untilOption = text('until', 'WHEN', 'end: now (default), or the same forms; a date means the end of that day');
export const byOption = text('by', 'KEY', 'client (default), bundle, domain, group, day or hour');
export const reportClientOption = text('client', 'IP|NAME', 'only this client (address, or name as the server knows it)');
export const bundleOption = text('bundle', 'NAME', 'only this bundle (e.g. whatsapp)');
export const formatOption = text('format', 'FORMAT', 'table (default; local times), csv (key,name,count,first,last) or json');

export const reportFleet = flag({
  name: 'fleet', commands: ['report'],
  help: 'the whole fleet\'s blocked attempts from its hourly counts in Redis (--redis) instead of this node\'s history database: --by client, bundle, site, node, day or hour; times to the hour',
});

/** `sinkhole report --fleet`: the same shapes, from the fleet's Redis (src/fleet/report.ts). */
export async function printFleetReport(config: Config, get: (name: string) => string | undefined, now: number, print: (text: string) => void): Promise<void> {
  if (config.redis === null) throw new ConfigError('report --fleet needs the fleet\'s Redis: pass --redis URL or --config FILE that sets redis');
  const by = get('by') ?? 'client';
  const q = parseReportArgs((name) => (name === 'by' ? undefined : get(name)), now);
  if ('error' in q) throw new ConfigError(`report: ${q.error}`);
  const problem = fleetReportProblem(by, q.client, q.bundle);
  if (problem !== null) throw new ConfigError(`report --fleet: ${problem}`);
  const format = get('format') ?? 'table';
  if (!FORMATS.includes(format)) throw new ConfigError(`report: --format "${format}" is not one of ${FORMATS.join(', ')}`);
  const link = new RedisLink({ url: config.redis, passwordFile: config.redisPasswordFile, ca: config.redisCa, maxBackoffMs: 500 }, QUIET);
  try {
    if (!(await link.start(3000))) throw new UnreachableError(`report --fleet: cannot reach Redis at ${redactUrl(config.redis)} within 3 s; is it running, and are the URL and password right?`);
    const r = await fleetReport(link, { ...q, by: by as FleetReportBy }, now);
    print(format === 'json' ? `${JSON.stringify(r)}\n` : format === 'csv' ? reportCsv(r) : reportTable(r).replace(/^blocked attempts/, 'fleet: blocked attempts'));
  } finally {
    await link.close();
  }
}

const QUIET = { warn: () => undefined, info: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;

export const reportCommand: Command = {
  name: 'report', operands: '', minOperands: 0, maxOperands: 0,
  wrongOperands: 'report takes no name; filter with --client or --bundle (see "sinkhole report --help")',
  summary: 'who tried what: blocked attempts from the history database, counted per client, bundle, domain, group, day or hour',
  description: 'Reads STATE-DIR/history.sqlite read-only, so it works while the server runs and while it is stopped. ' +
    'Every blocked attempt counts, also the repeats the log folds into one line. Example: sinkhole report --since 7d --by client. ' +
    'JSON: {"since","until","by","rows":[{"key","name","count","first","last"}]}; CSV: key,name,count,first,last.',
  own: [sinceOption, untilOption, byOption, reportClientOption, bundleOption, formatOption, reportFleet],
  run: async ({ settings }) => {
    const own = new Map<string, string | null>([
      ['since', settings.get(sinceOption)], ['until', settings.get(untilOption)], ['by', settings.get(byOption)],
      ['client', settings.get(reportClientOption)], ['bundle', settings.get(bundleOption)], ['format', settings.get(formatOption)],
      ['state-dir', settings.get(stateDir)],
    ]);
    if (settings.get(reportFleet)) {
      await printFleetReport(configFrom(settings, { needUpstreams: false }), (name) => own.get(name) ?? undefined, Date.now(), (t) => process.stdout.write(t));
      return 0;
    }
    printReport((name) => own.get(name) ?? undefined, Date.now(), (t) => process.stdout.write(t));
    return 0;
  },
};
