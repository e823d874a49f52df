// A subcommand: what it says about itself (CommandSpec), the options only it takes (declared
// in its own file), and what it does. It returns its exit status, or -1 to keep running.
import type { CommandSpec } from '../../config/command.js';
import type { CommandInput } from '../../config/config.js';
import type { Option } from '../../config/option.js';

export interface Command extends CommandSpec {
  own: readonly Option[];
  run(input: CommandInput): Promise<number>;
}
