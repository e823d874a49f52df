#!/usr/bin/env node
// The `sinkhole` command: parses the command line and runs one subcommand. Errors a person
// can fix (bad flag, unreadable folder, port in use) print one line and exit non-zero.
import { buildConfig, ConfigError, serveHelp } from './config.js';
import { FolderError } from './policy/load.js';
import { StartupError } from './server/bind-error.js';
import { serve } from './serve.js';

const USAGE = `Usage: sinkhole <command> [options]

Commands:
  serve      run the DNS server in the foreground ("sinkhole serve --help" lists its options)
  help       show this text

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
  throw new ConfigError(`unknown command "${command}" (see "sinkhole help")`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const known = err instanceof ConfigError || err instanceof StartupError || err instanceof FolderError;
    process.stderr.write(`sinkhole: ${known ? (err as Error).message : (err as Error).stack ?? String(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
