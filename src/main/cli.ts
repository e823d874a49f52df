#!/usr/bin/env node
// The `sinkhole` command: parses the command line and runs one subcommand. Errors a person
// can fix (bad flag, unreadable folder, port in use) print one line and exit non-zero.
import { disableBundle, enableBundle, formatBundles, listBundles } from '../stages/policy/bundles.js';
import { buildConfig, ConfigError, serveHelp, type Config } from '../config/config.js';
import { NetworkList } from '../stages/policy/cidr.js';
import { checkName, formatCheck } from '../stages/policy/check.js';
import { Policy } from '../stages/policy/policy.js';
import { loadBlocklists, FolderError } from '../stages/policy/load.js';
import { parseQtype } from '../wire/constants.js';
import { StartupError } from '../net/bind-error.js';
import { serve } from './serve.js';
import { printStats } from './commands/stats.js';
import { waitReady } from './commands/wait-ready.js';

const USAGE = `Usage: sinkhole <command> [options]

Commands:
  serve                 run the DNS server in the foreground ("sinkhole serve --help" lists its options)
  check NAME [--type T] [--client IP] [--json]
                        say whether NAME is blocked and by which rules (exit 0 allowed, 1 blocked, 2 error)
  list                  show the bundles: enabled (in the blocklist folder) and available (in its available/)
  enable NAME           move bundle NAME from available/ into the blocklist folder
  disable NAME          move bundle NAME from the blocklist folder into available/
  stats                 print the running server's statistics (needs --admin, or --config with admin)
  wait-ready [--timeout S]
                        wait until the configured server answers (systemd's ExecStartPost)
  help                  show this text

check, list, enable and disable read --blocklists DIR or --config FILE like serve does
(default ./blocklists).

A DNS sinkhole for networks: names in the blocklists answer 127.0.0.1 / ::1, everything
else is forwarded to upstream resolvers and cached.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'serve') {
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(serveHelp());
      return 0;
    }
    await serve(buildConfig(rest));
    return -1; // keeps running; exits from the signal handler
  }
  if (command === 'check') return check(rest);
  if (command === 'stats') {
    const { positional, flags } = takeFlags(rest, []);
    if (positional.length > 0) throw new ConfigError('stats takes no name (see "sinkhole help")');
    await printStats(buildConfig(flags, { needUpstreams: false }));
    return 0;
  }
  if (command === 'wait-ready') {
    const { positional, own, flags } = takeFlags(rest, ['--timeout']);
    if (positional.length > 0) throw new ConfigError('wait-ready takes no name (see "sinkhole help")');
    const seconds = Number(own.get('--timeout') ?? '60');
    if (!(seconds > 0)) throw new ConfigError(`--timeout: "${own.get('--timeout')}" must be a number of seconds`);
    await waitReady(buildConfig(flags, { needUpstreams: false }), seconds * 1000);
    return 0;
  }
  if (command === 'list' || command === 'enable' || command === 'disable') {
    const { positional, flags } = takeFlags(rest, []);
    const config = buildConfig(flags, { needUpstreams: false });
    if (command === 'list') {
      if (positional.length > 0) throw new ConfigError('list takes no name (see "sinkhole help")');
      console.log(formatBundles(listBundles(config.blocklists)));
      return 0;
    }
    if (positional.length !== 1) throw new ConfigError(`${command} takes one bundle name, e.g. "sinkhole ${command} whatsapp" (see "sinkhole list")`);
    console.log(command === 'enable' ? enableBundle(config.blocklists, positional[0]!) : disableBundle(config.blocklists, positional[0]!));
    return 0;
  }
  throw new ConfigError(`unknown command "${command}" (see "sinkhole help")`);
}

/** Splits off positional words and the named command-specific flags from the shared ones. */
function takeFlags(args: string[], own: string[]): { positional: string[]; own: Map<string, string>; flags: string[] } {
  const positional: string[] = [];
  const ownValues = new Map<string, string>();
  const flags: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
    } else if (own.includes(arg)) {
      if (arg === '--json') ownValues.set(arg, 'true');
      else {
        const value = args[++i];
        if (value === undefined) throw new ConfigError(`option ${arg} needs a value`);
        ownValues.set(arg, value);
      }
    } else {
      flags.push(arg);
      if (!arg.includes('=') && args[i + 1] !== undefined && !args[i + 1]!.startsWith('--')) flags.push(args[++i]!);
    }
  }
  return { positional, own: ownValues, flags };
}

/** `sinkhole check NAME`: exit 0 when the name would be answered normally, 1 when blocked or refused. */
async function check(args: string[]): Promise<number> {
  const { positional, own, flags } = takeFlags(args, ['--type', '--client', '--json']);
  if (positional.length !== 1) throw new ConfigError('check takes one name, e.g. "sinkhole check gateway.messenger.hotmail.com"');
  const qtype = parseQtype(own.get('--type') ?? 'A');
  if (qtype === undefined) throw new ConfigError(`--type: "${own.get('--type')}" is not a query type (A, AAAA, MX, HTTPS, TYPE65, ...)`);
  const config: Config = buildConfig(flags, { needUpstreams: false });
  const client = own.get('--client') ?? null;
  if (client !== null && !/^[0-9a-f:.]+$/i.test(client)) throw new ConfigError(`--client: "${client}" is not an IP address`);
  const report = await loadBlocklists(config.blocklists);
  for (const f of report.failed) process.stderr.write(`sinkhole: warning: cannot read ${f.path} (${f.reason}); its rules are not considered\n`);
  const result = checkName({
    policy: new Policy(report.ruleSet, config.exemptClients.length === 0 ? null : new NetworkList(config.exemptClients)),
    allowNets: config.allowNets === null ? null : new NetworkList(config.allowNets),
    sinkholeIpv4: config.sinkholeIpv4,
    sinkholeIpv6: config.sinkholeIpv6,
  }, positional[0]!, qtype, client);
  if ('error' in result) throw new ConfigError(result.error);
  console.log(own.has('--json') ? JSON.stringify(result) : formatCheck(result));
  return result.verdict === 'blocked' || result.verdict === 'refused' ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const known = err instanceof ConfigError || err instanceof StartupError || err instanceof FolderError;
    process.stderr.write(`sinkhole: ${known ? (err as Error).message : (err as Error).stack ?? String(err)}\n`);
    // 2: the command line, a config or a folder is wrong; 1: the server could not start (or a bug).
    process.exit(err instanceof ConfigError || err instanceof FolderError ? 2 : 1);
  },
);
