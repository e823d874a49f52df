// Every subcommand, in the order `sinkhole help` and the manual page list them.
import { ConfigError } from '../../config/errors.js';
import { commandHelp, usage } from '../../config/help.js';
import { defaultConfig } from '../../config/paths.js';
import { listCommand, enableCommand, disableCommand } from './bundles.js';
import { checkCommand } from './check.js';
import type { Command } from './command.js';
import { reportCommand } from './report.js';
import { listsCommand, pauseCommand, resumeCommand } from './pause.js';
import { serveCommand } from './serve.js';
import { fleetCommand } from './fleet.js';
import { statsCommand } from './stats.js';
import { waitReadyCommand } from './wait-ready.js';

export const helpCommand: Command = {
  name: 'help', operands: '[COMMAND]', minOperands: 0, maxOperands: 1,
  wrongOperands: 'help takes at most one command name, e.g. "sinkhole help check"',
  summary: 'show this text, or the help of COMMAND',
  description: 'Shows the commands, or with COMMAND the same text as "sinkhole COMMAND --help".',
  own: [],
  run: async ({ operands }) => {
    const name = operands[0];
    if (name === undefined) {
      console.log(usage(COMMANDS.map(documented), defaultConfig()));
      return 0;
    }
    const command = findCommand(name);
    console.log(commandHelp(documented(command), defaultConfig()));
    return 0;
  },
};

export const COMMANDS: readonly Command[] = [
  serveCommand, checkCommand, listCommand, enableCommand, disableCommand, statsCommand, fleetCommand, reportCommand, pauseCommand, resumeCommand, listsCommand, waitReadyCommand, helpCommand,
];

export function documented(c: Command): { spec: Command; own: Command['own'] } {
  return { spec: c, own: c.own };
}

export function findCommand(name: string): Command {
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) throw new ConfigError(`unknown command "${name}" (see "sinkhole help")`);
  return command;
}
