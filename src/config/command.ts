// What a subcommand says about itself, for the parser, `--help`, `sinkhole help` and the
// manual page. Its options are the declarations whose `commands` name it.
export const COMMAND_NAMES = ['serve', 'check', 'list', 'enable', 'disable', 'stats', 'fleet', 'report', 'pause', 'resume', 'lists', 'wait-ready', 'help'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/** Every command that reads the config file (all but help). */
export const READS_CONFIG: readonly CommandName[] = ['serve', 'check', 'list', 'enable', 'disable', 'stats', 'fleet', 'report', 'pause', 'resume', 'lists', 'wait-ready'];

export interface CommandSpec {
  name: CommandName;
  /** Placeholder for the operands (`NAME`, `[COMMAND]`), or '' when it takes none. */
  operands: string;
  minOperands: number;
  maxOperands: number;
  /** The one line said when the operand count is wrong (commands without operands say "unexpected argument"). */
  wrongOperands?: string;
  /** One line, for `sinkhole help`. */
  summary: string;
  /** Plain sentences, for `--help` and the manual page. */
  description: string;
}
