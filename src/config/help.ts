// `sinkhole help` and `sinkhole COMMAND --help`, made from the command and option declarations.
import type { CommandSpec } from './command.js';
import { EXIT_STATUS } from './errors.js';
import type { Option } from './option.js';
import { AREAS } from './options/index.js';
import { SYSTEM_CONFIG, type ConfigChoice } from './paths.js';

/** A command as the documentation sees it: what it says, and the options only it takes. */
export interface DocumentedCommand {
  spec: CommandSpec;
  own: readonly Option[];
}

export interface OptionGroup {
  title: string;
  options: Option[];
}

/** The options a command takes, its own first, then by area. */
export function optionGroups(c: DocumentedCommand): OptionGroup[] {
  const groups: OptionGroup[] = [];
  if (c.own.length > 0) groups.push({ title: `Options of ${c.spec.name}`, options: [...c.own] });
  for (const area of AREAS) {
    const options = area.options.filter((o) => o.commands.includes(c.spec.name));
    if (options.length > 0) groups.push({ title: area.title, options });
  }
  return groups;
}

export function synopsis(c: CommandSpec): string {
  const operands = c.operands === '' ? '' : ` ${c.operands}`;
  return `sinkhole ${c.name}${operands}${c.name === 'help' ? '' : ' [options]'}`;
}

/** `--name ARG` */
export function flagText(o: Option): string {
  return o.arg === null ? `--${o.name}` : `--${o.name} ${o.arg}`;
}

/** Words wrapped to `width` columns, each line indented. */
export function wrap(text: string, indent: string, width = 80): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

function optionLines(o: Option, configNow: ConfigChoice | null): string[] {
  const lines = [`  ${flagText(o)}${o.repeatable ? '  (repeatable)' : ''}`, ...wrap(o.help, '      ')];
  if (o.range !== null && o.arg !== null) lines.push(...wrap(`valid: ${o.range}`, '      '));
  lines.push(...wrap(`default: ${o.defaultText}`, '      '));
  // A path is never broken across lines: it may be copied.
  if (o.name === 'config' && configNow !== null) lines.push(`      now: ${configNow.path ?? 'none'}`, ...wrap(`(${configNow.why})`, '        '));
  return lines;
}

/** `sinkhole COMMAND --help`. `configNow` is the config file this run would read without --config. */
export function commandHelp(c: DocumentedCommand, configNow: ConfigChoice | null): string {
  const lines = [`Usage: ${synopsis(c.spec)}`, '', ...wrap(c.spec.description, ''), ''];
  for (const group of optionGroups(c)) {
    lines.push(`${group.title}:`);
    for (const o of group.options) lines.push(...optionLines(o, configNow));
    lines.push('');
  }
  lines.push('  -h, --help', '      show this text');
  if (c.spec.name !== 'help') lines.push('', `Flags override the config file (${SYSTEM_CONFIG} when installed); "man sinkhole" has the details.`);
  return lines.join('\n');
}

/** `sinkhole help`. */
export function usage(commands: readonly DocumentedCommand[], configNow: ConfigChoice): string {
  const head = (c: CommandSpec): string => `${c.name}${c.operands === '' ? '' : ` ${c.operands}`}`;
  const width = Math.max(...commands.map((c) => head(c.spec).length)) + 2;
  return [
    'Usage: sinkhole <command> [options]',
    '       sinkhole --version',
    '',
    'A DNS sinkhole for networks: names in the blocklists answer 127.0.0.1 / ::1, everything',
    'else is forwarded to upstream resolvers and cached.',
    '',
    'Commands:',
    ...commands.flatMap((c) => wrap(c.spec.summary, ' '.repeat(width + 2)).map((l, i) => (i === 0 ? `  ${head(c.spec).padEnd(width)}${l.trimStart()}` : l))),
    '',
    '"sinkhole COMMAND --help" lists the options of each command.',
    `Config file: ${configNow.path ?? 'none'}`,
    ...wrap(`(${configNow.why}; --config FILE or SINKHOLE_CONFIG=FILE names another)`, '  '),
    '',
    'Exit status:',
    ...EXIT_STATUS.flatMap((e) => wrap(e.meaning, '     ').map((l, i) => (i === 0 ? `  ${e.code}  ${l.trimStart()}` : l))),
  ].join('\n');
}
