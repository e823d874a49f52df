#!/usr/bin/env node
// The `sinkhole` command: finds the subcommand, parses its command line with the one parser
// (src/config/settings.ts) and runs it. Errors a person can fix print one line and exit
// with the error's own status: 2 bad command line or config, 1 cannot start, 3 nothing answered.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, readCommandLine, UnreachableError } from '../config/config.js';
import { commandHelp, usage } from '../config/help.js';
import { APP_DIR, defaultConfig } from '../config/paths.js';
import { FolderError } from '../stages/policy/load.js';
import { StartupError } from '../net/bind-error.js';
import { COMMANDS, documented, findCommand } from './commands/index.js';

function version(): string {
  return (JSON.parse(readFileSync(join(APP_DIR, 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage(COMMANDS.map(documented), defaultConfig()));
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    console.log(`sinkhole ${version()}`);
    return 0;
  }
  const command = findCommand(name);
  const input = readCommandLine(command.name, rest, command.own);
  if (input.help) {
    console.log(commandHelp(documented(command), defaultConfig()));
    return 0;
  }
  if (input.operands.length < command.minOperands || input.operands.length > command.maxOperands) {
    const extra = input.operands[command.maxOperands];
    throw new ConfigError(command.wrongOperands ?? `unexpected argument "${extra}" (see "sinkhole ${command.name} --help")`);
  }
  return command.run(input);
}

/** The exit status of an error: its own, 2 for a bad folder, 1 for a start failure or a bug. */
function exitStatus(err: unknown): number {
  if (err instanceof ConfigError || err instanceof UnreachableError) return err.exitCode;
  if (err instanceof FolderError) return 2;
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const known = err instanceof ConfigError || err instanceof UnreachableError || err instanceof StartupError || err instanceof FolderError;
    process.stderr.write(`sinkhole: ${known ? (err as Error).message : (err as Error).stack ?? String(err)}\n`);
    process.exit(exitStatus(err));
  },
);
